"""Infrastructure logs per service: what the infrastructure reports (a disk replaced, a DDoS
mitigated, a server delivered), shown to the service's admin and tech contacts (partners
included) as the provider receives it.

* :mod:`core.infralogs.entries`: ingestion (batches, idempotent on each entry's id, set-based),
  pages (keyset, newest first) and the live tail's polling;
* :mod:`core.infralogs.retention`: entries older than their universe's ``logs_kept`` days go,
  and a service's go with its data (the outbox's ``delete``, core/lifecycle/outbox.py).

Raw events of a universe's infrastructure become entries through its plugin's
``univers_translate_infra_event`` hook.
"""
