"""HTTP plumbing shared by the JSON API and the web pages: forms, problem details, headers."""
