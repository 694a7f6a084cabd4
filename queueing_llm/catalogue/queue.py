"""Built-in theorems of MODEL.md section 5 (queue family); importing the module registers them."""
