"""Values -> specs: workspace values and their schema, the derived values, the Jinja engine that renders specs."""
