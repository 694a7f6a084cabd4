"""Built-in theorems of MODEL.md section 5 (dynamics family); importing the module registers them."""
