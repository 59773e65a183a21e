"""The work behind each binary, as library functions a test can call: `train` (the task
registry), `similarity` (the systems), `evaluate` and `demo`."""
