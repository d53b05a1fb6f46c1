"""Static analysis of cell sources without a kernel: names, fit calls, magics, lint and targets."""
