"""Small reusable widgets of the admin dashboard."""
