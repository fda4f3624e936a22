"""A mocked `MLClient` for the azure backend's offline tests and for the notebooks' Azure cells.

It is `unittest.mock.MagicMock(spec=MLClient)`: only the network calls are faked. What a call
sends is the real azure-ai-ml entity built by visionops, recorded untouched in `client.sent` (and,
when VISIONOPS_AZURE_MOCK_LOG names a file, appended to it as one JSON line per call, so a test
can assert what a notebook kernel sent from another process). Assets that are created are kept,
so `get()` after `create_or_update()` finds them as a workspace would: registering the same data
version twice creates it once.

Use it
- in pytest: `client = mock_ml_client(settings)`, then `AzureWorkspace(settings, ml_client=client)`;
- in a notebook run by papermill: put tests/support on PYTHONPATH and set
  VISIONOPS_AZURE_CLIENT_FACTORY=azure_mock:mock_ml_client (the kernel inherits both), then any
  `get_workspace(settings)` with backend=azure uses this client.

Knobs (attributes of the returned client): `job_status` (final status of every job, default
"Completed"), `tracking_uri` (what the workspace reports as its MLflow URI; default the settings'
local sqlite store, so registry calls stay on this machine).
"""

from __future__ import annotations

import json
import os
from itertools import count
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

from azure.ai.ml import MLClient
from azure.core.exceptions import ResourceNotFoundError

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def _poller(result: Any) -> MagicMock:
    poller = MagicMock(name="LROPoller")
    poller.result.return_value = result
    poller.done.return_value = True
    return poller


def _entity_dict(entity: Any) -> Any:
    try:
        return entity._to_dict()
    except Exception:  # noqa: BLE001 - a record must never break the call it records
        return repr(entity)


def mock_ml_client(settings: Any = None, *, workspace: str = "mock-ws", resource_group: str = "mock-rg") -> MagicMock:
    """A MagicMock(spec=MLClient) whose operations behave like an empty workspace."""
    client = MagicMock(spec=MLClient, name="MLClient")
    client.subscription_id = SUBSCRIPTION
    client.resource_group_name = getattr(settings, "resource_group", None) or resource_group
    client.workspace_name = getattr(settings, "workspace_name", None) or workspace
    client.sent = []
    client.job_status = "Completed"
    client.tracking_uri = settings.tracking_uri if settings is not None else "sqlite:///mlflow-mock.db"
    log = os.environ.get("VISIONOPS_AZURE_MOCK_LOG")
    stores: dict[str, dict[Any, Any]] = {k: {} for k in ("data", "env", "compute", "jobs", "endpoints", "deps")}
    ids = count(1)

    def record(op: str, entity: Any, **extra: Any) -> None:
        client.sent.append({"op": op, "entity": entity, **extra})
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                line = {"op": op, "type": type(entity).__name__, "entity": _entity_dict(entity), **extra}
                fh.write(json.dumps(line, default=str) + "\n")

    def not_found(kind: str, key: Any) -> ResourceNotFoundError:
        return ResourceNotFoundError(f"{kind} {key} not found in mock workspace {client.workspace_name}")

    def studio(name: str) -> str:
        return (f"https://ml.azure.com/runs/{name}?wsid=/subscriptions/{SUBSCRIPTION}/resourcegroups/"
                f"{client.resource_group_name}/workspaces/{client.workspace_name}")

    # --- workspace ---------------------------------------------------------------------------
    client.workspaces.get.side_effect = lambda name=None, **kw: SimpleNamespace(
        name=name or client.workspace_name, mlflow_tracking_uri=client.tracking_uri
    )

    # --- versioned assets (data, environments) ------------------------------------------------
    def versioned(kind: str, op: str):
        store = stores[kind]

        def get(name: str, version: str | None = None, label: str | None = None, **kw: Any) -> Any:
            if version is None:
                versions = [v for (n, _), v in store.items() if n == name]
                if not versions:
                    raise not_found(op, name)
                return versions[-1]
            if (name, str(version)) not in store:
                raise not_found(op, f"{name}:{version}")
            return store[(name, str(version))]

        def create(entity: Any, **kw: Any) -> Any:
            record(f"{op}.create_or_update", entity)
            store[(entity.name, str(entity.version))] = entity
            return entity

        def list_(name: str | None = None, **kw: Any) -> list[Any]:
            if name is None:  # containers: one entry per name
                return [SimpleNamespace(name=n) for n in dict.fromkeys(n for n, _ in store)]
            return [v for (n, _), v in store.items() if n == name]

        return get, create, list_

    client.data.get.side_effect, client.data.create_or_update.side_effect, client.data.list.side_effect = versioned(
        "data", "data"
    )
    (client.environments.get.side_effect, client.environments.create_or_update.side_effect,
     client.environments.list.side_effect) = versioned("env", "environments")

    # --- compute -------------------------------------------------------------------------------
    def compute_get(name: str, **kw: Any) -> Any:
        if name not in stores["compute"]:
            raise not_found("compute", name)
        return stores["compute"][name]

    def compute_create(compute: Any, **kw: Any) -> Any:
        record("compute.begin_create_or_update", compute)
        stores["compute"][compute.name] = compute
        return _poller(compute)

    client.compute.get.side_effect = compute_get
    client.compute.begin_create_or_update.side_effect = compute_create

    # --- jobs ----------------------------------------------------------------------------------
    def job_create(job: Any, experiment_name: str | None = None, **kw: Any) -> Any:
        record("jobs.create_or_update", job, experiment_name=experiment_name)
        name = f"mock-job-{next(ids)}"
        children = list(getattr(job, "jobs", {}) or {})
        stores["jobs"][name] = children
        return SimpleNamespace(name=name, display_name=getattr(job, "display_name", None), status="Starting",
                               studio_url=studio(name), outputs={})

    def job_get(name: str, **kw: Any) -> Any:
        if name not in stores["jobs"]:
            raise not_found("job", name)
        return SimpleNamespace(name=name, display_name=name, status=client.job_status, studio_url=studio(name),
                               outputs={})

    def job_stream(name: str, **kw: Any) -> None:
        if client.job_status == "Failed":
            from azure.ai.ml.exceptions import JobException

            raise JobException(message=f"job {name} failed", no_personal_data_message="job failed")

    def job_list(parent_job_name: str | None = None, **kw: Any) -> list[Any]:
        children = stores["jobs"].get(parent_job_name, [])
        status = client.job_status
        return [SimpleNamespace(name=f"{parent_job_name}-{c}", display_name=c,
                                status="Completed" if status == "Completed" or i < len(children) - 1 else status)
                for i, c in enumerate(children)]

    client.jobs.create_or_update.side_effect = job_create
    client.jobs.get.side_effect = job_get
    client.jobs.stream.side_effect = job_stream
    client.jobs.list.side_effect = job_list

    # --- components and schedules --------------------------------------------------------------
    def component_create(component: Any, version: str | None = None, **kw: Any) -> Any:
        record("components.create_or_update", component)
        return SimpleNamespace(name=component.name, version=component.version,
                               id=f"azureml:{component.name}:{component.version}")

    client.components.create_or_update.side_effect = component_create
    client.schedules.begin_create_or_update.side_effect = lambda s, **kw: (
        record("schedules.begin_create_or_update", s), _poller(s))[1]

    # --- online endpoints --------------------------------------------------------------------
    def endpoint_get(name: str, **kw: Any) -> Any:
        if name not in stores["endpoints"]:
            raise not_found("online endpoint", name)
        return stores["endpoints"][name]

    def endpoint_create(endpoint: Any, **kw: Any) -> Any:
        record("online_endpoints.begin_create_or_update", endpoint, traffic=dict(endpoint.traffic or {}))
        # read-only on the entity: the service fills it in its answer
        endpoint._scoring_uri = f"https://{endpoint.name}.westeurope.inference.ml.azure.com/score"
        stores["endpoints"][endpoint.name] = endpoint
        return _poller(endpoint)

    def endpoint_delete(name: str, **kw: Any) -> Any:
        record("online_endpoints.begin_delete", name)
        if stores["endpoints"].pop(name, None) is None:
            raise not_found("online endpoint", name)
        return _poller(None)

    def deployment_create(deployment: Any, **kw: Any) -> Any:
        record("online_deployments.begin_create_or_update", deployment)
        stores["deps"][(deployment.endpoint_name, deployment.name)] = deployment
        return _poller(deployment)

    def deployment_delete(name: str, endpoint_name: str, **kw: Any) -> Any:
        record("online_deployments.begin_delete", name, endpoint_name=endpoint_name)
        stores["deps"].pop((endpoint_name, name), None)
        return _poller(None)

    def invoke(endpoint_name: str, request_file: str | None = None, deployment_name: str | None = None,
               **kw: Any) -> str:
        """What score.py answers: one prediction per image, the deployment's model name/version."""
        with open(request_file, encoding="utf-8") as fh:
            payload = json.load(fh)
        record("online_endpoints.invoke", payload, endpoint_name=endpoint_name, deployment_name=deployment_name)
        ep = endpoint_get(endpoint_name)
        target = deployment_name or max((ep.traffic or {"": 0}).items(), key=lambda kv: kv[1])[0]
        dep = stores["deps"].get((endpoint_name, target))
        if dep is None:
            return json.dumps({"error": {"code": "no_deployment", "message": f"no deployment {target!r}"}})
        env = dep.environment_variables or {}
        images = payload.get("images") or ([payload["image"]] if "image" in payload else [])
        return json.dumps({
            "model": {"name": env.get("VISIONOPS_SERVING_MODEL_NAME"),
                      "version": env.get("VISIONOPS_SERVING_MODEL_VERSION"),
                      "runtime": env.get("VISIONOPS_SERVING_RUNTIME")},
            "predictions": [{"width": 96, "height": 96, "boxes": [], "class_ids": [], "labels": [],
                             "confidences": []} for _ in images],
            "inference_ms": 1.0,
        })

    client.online_endpoints.get.side_effect = endpoint_get
    client.online_endpoints.begin_create_or_update.side_effect = endpoint_create
    client.online_endpoints.begin_delete.side_effect = endpoint_delete
    client.online_endpoints.get_keys.side_effect = lambda name, **kw: SimpleNamespace(
        primary_key="mock-primary-key", secondary_key="mock-secondary-key"
    )
    client.online_endpoints.invoke.side_effect = invoke
    def deployment_get(name: str, endpoint_name: str, **kw: Any) -> Any:
        if (endpoint_name, name) not in stores["deps"]:
            raise not_found("online deployment", f"{endpoint_name}/{name}")
        return stores["deps"][(endpoint_name, name)]

    client.online_deployments.get.side_effect = deployment_get
    client.online_deployments.begin_create_or_update.side_effect = deployment_create
    client.online_deployments.begin_delete.side_effect = deployment_delete
    return client


def sent(client: MagicMock, op: str) -> list[Any]:
    """The entities sent with one operation, e.g. sent(client, "data.create_or_update")."""
    return [c["entity"] for c in client.sent if c["op"] == op]
