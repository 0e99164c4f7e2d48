"""Small helpers every part may use, each written once. Imports nothing of the exporter but
`exporter.errors`, so it sits below every layer."""
