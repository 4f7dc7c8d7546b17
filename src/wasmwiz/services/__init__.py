"""Use cases shared by the API, the web pages and the CLI: no HTTP, no templates."""
