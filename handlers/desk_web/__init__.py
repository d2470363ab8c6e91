"""The web desk: the provincial office works its proposals in a browser, under /desk."""
