"""The core: each call checked and laid out once (``plan``), then run eagerly (``rows``)."""
