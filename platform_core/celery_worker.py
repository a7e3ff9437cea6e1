"""The Celery app of the step workers (``celery -A platform_core.celery_worker worker``, started
by ``deploy/worker.sh``): dagster-celery's step task on the broker and backend that
``platform_core.executors`` reads from the same environment variables."""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from platform_core.executors import celery_settings

_broker, _backend = celery_settings()
app = make_app(CeleryExecutor.for_cli(broker=_broker, backend=_backend).app_args())
execute_plan = create_task(app)
