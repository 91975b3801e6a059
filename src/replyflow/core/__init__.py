"""The neutral lower layer: what several stages share and no stage owns.

Message contracts and ID patterns (:mod:`.contracts`), class lists and ticket codes
(:mod:`.labels`), the pure reply policy (:mod:`.policy`), the one X API client
(:mod:`.xapi`), and small utilities (waiting, processes, files, times, the API token file).
Nothing here imports a stage package; see docs/ARCHITECTURE.md for the layers.
"""
