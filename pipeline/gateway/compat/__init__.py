"""Other platforms' HTTP APIs on faasflow's gateway, each mapped onto the same functions,
events and results as faasflow's own API: one module or package per platform."""
