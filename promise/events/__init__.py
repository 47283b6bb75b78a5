"""The event backbone: inventory events from a stream, every change published, replay tools.

- :mod:`~promise.events.broker`: the small broker interface; :mod:`~promise.events.jetstream`
  implements it on NATS JetStream.
- :mod:`~promise.events.consumer`: applies the inventory stream through the stock service's
  idempotent event path, acknowledging after commit, dead-lettering what can never apply.
- :mod:`~promise.events.publisher`: drains the authority's transactional outbox
  (:mod:`promise.stock.outbox`) to the output stream in commit order.
- :mod:`~promise.events.replay`: rebuilds stock from the stream into a fresh store and reports
  drift; :mod:`~promise.events.cli`: ``promise consume`` and ``promise events ...``.

Nothing is imported here: ``promise serve`` must configure the metrics before they load.
"""

__all__: list[str] = []
