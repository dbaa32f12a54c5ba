"""The lazy executors: the core's plans and the linear problems on Dask arrays, block by block."""
