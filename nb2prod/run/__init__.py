"""Running notebooks: the only code that starts kernels, and the capture cell it ships into them."""
