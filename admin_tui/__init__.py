"""codelace-box's terminal admin dashboard (Textual): `codelace-box admin`."""
