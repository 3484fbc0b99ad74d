# Entry points; see README. Everything sets itself up on a fresh machine.
.PHONY: demo test test-long chaos bench crds lint fmt cluster-up cluster-down

demo:
	hack/demo.sh

test:
	hack/test.sh

test-long:
	hack/test.sh -m long

chaos:
	hack/test.sh -m chaos

bench:
	hack/bench.sh

crds:
	.venv/bin/python -m backfill_operator.api.crdgen --write

fmt:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

cluster-up:
	PYTHONPATH=hack .venv/bin/python -m devcluster up

cluster-down:
	PYTHONPATH=hack .venv/bin/python -m devcluster down
