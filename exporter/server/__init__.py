"""The HTTP side: the app factory, the JSON API, `/probe`, and the status page."""
