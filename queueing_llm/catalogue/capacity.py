"""Built-in theorems of MODEL.md section 5 (capacity family); importing the module registers them."""
