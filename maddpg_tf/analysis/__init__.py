"""Results analysis: the paper's statistics and tables, the field's aggregate metrics, figures. No TensorFlow."""
