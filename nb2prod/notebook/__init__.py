"""Reading notebooks: cells and their roles, notebook metadata, the parameters cell."""
