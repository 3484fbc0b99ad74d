"""backfill-operator: declarative backfills on Kubernetes, one Job per partition."""
