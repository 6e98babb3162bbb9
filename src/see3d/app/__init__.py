"""`see3d app`: the whole flow in one local web page (viser) -- image(s) in, camera path drawn in 3D, views
appear as they are generated, splats refine live, files out. :mod:`see3d.app.session` holds the steps
(testable without a browser), :mod:`see3d.app.jobs` runs them one at a time in the background, and
:mod:`see3d.app.page` is the page."""
