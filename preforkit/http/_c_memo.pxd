# Types for the compiled twin of _memo.py (preforkit/_accel.py); the Python module is the reference.
# Compiled, remember() runs as C: the modules calling it reach it as a compiled function (~200
# instructions a call) instead of a Python one (~1,400): every memo miss pays one.

cpdef void remember(dict cache, key, value, Py_ssize_t size)

cpdef bint seen_before(dict sightings, key, Py_ssize_t size) except -1
