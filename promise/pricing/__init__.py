"""The opportunity-cost price table on the service side: its routes, the CLI and the job.

The table itself lives in the authority beside live stock (:mod:`promise.stock._price_queries`)
and each worker charges its copy (:mod:`promise.stock.live_prices`). Here:

- :mod:`~promise.pricing.routes` and :mod:`~promise.pricing.service`: ``GET`` and
  ``PUT /v1/prices``;
- :mod:`~promise.pricing.run`: one pricing run (live network and stock, a forecast, the LP,
  the next table version); :mod:`~promise.pricing.cli`: ``promise price``;
- :mod:`~promise.pricing.job`: the service's re-pricing every k orders or m seconds, one host
  at a time; :mod:`~promise.pricing.config`: its settings; :mod:`~promise.pricing.metrics`.

Nothing is imported here: ``promise serve`` must configure the metrics before they load.
"""

__all__: list[str] = []
