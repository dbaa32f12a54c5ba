/* The instruction sets fastxent's CPU kernels are built for, best first: the one list.
 *
 *   FX_ISA(name, "machines", "compiler flags", run-time test)
 *
 * name       the kernel path: fx_kernels.c is compiled with -DFX_ISA=name against
 *            fx_simd_<name>.h, giving the table fx_kernels_<name>
 * machines   platform.machine() values (lower case) it builds on; "*" is every machine
 * flags      what setup.py adds to the compiler's command line for it
 * test       a C expression, true when this CPU runs that build (fx_dispatch.c;
 *            FX_X86_HAS(feature) is __builtin_cpu_supports on x86 and 0 elsewhere)
 *
 * setup.py (through fastxent/_isa.py) reads the first three fields, fx_dispatch.c the
 * whole line; FASTXENT_CPU_PATH, `python -m fastxent info`, the benchmark's --path and
 * the tests take the names from the built module. Adding an instruction set is one
 * fx_simd_<name>.h and one line here (docs/ADDING_AN_ISA.md).
 */
FX_ISA(avx512, "x86_64 amd64", "-mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma -mf16c -mpopcnt",
       FX_X86_HAS("avx512f") && FX_X86_HAS("avx512dq") && FX_X86_HAS("avx512vl") &&
       FX_X86_HAS("avx512bw") && FX_X86_HAS("fma") && FX_X86_HAS("f16c") && FX_X86_HAS("popcnt"))
FX_ISA(avx2, "x86_64 amd64", "-mavx2 -mfma -mf16c -mpopcnt",
       FX_X86_HAS("avx2") && FX_X86_HAS("fma") && FX_X86_HAS("f16c") && FX_X86_HAS("popcnt"))
FX_ISA(neon, "aarch64 arm64", "", 1)
FX_ISA(sse2, "x86_64 amd64", "", 1)
FX_ISA(plain, "*", "", 1)
