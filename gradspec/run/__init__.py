"""Running case files on engines: the runner and the worker pool."""
