"""A worker as wsgi.py makes it, but without the delivery thread: the benchmark's "request path only" app.

Same settings, same start-up and the same memory setting (memory.py) as
`forms_service.wsgi:app`, so what it measures is what receiving and spooling
an upload costs a production worker, without the delivery of earlier ones
(and with heap.py's sampler).
"""

from benchmarks.heap import start_sampling
from forms_service.memory import give_back_large_buffers
from forms_service.startup import load_app

give_back_large_buffers()
app = load_app()
start_sampling()
