"""From a captured run to the service project: code extraction, schema, manifest, rendering, writing."""
