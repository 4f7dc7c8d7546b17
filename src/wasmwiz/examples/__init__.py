"""Small example modules served to users and used by the demo."""
