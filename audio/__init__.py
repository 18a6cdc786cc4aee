"""Audio of the calls: the chunk stores that hold it (``stores``), wherever they are."""
