"""Case files: YAML with locations, schema validation, loading into frozen cases, sampling."""
