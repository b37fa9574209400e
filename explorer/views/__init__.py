"""View-models: what each page shows, as data. The pages lay them out; the benchmark times them."""
