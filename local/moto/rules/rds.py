"""moto_server with the RDS rules the rollback depends on and moto 5.2.5 does not enforce.

The local stack must never be laxer than AWS. moto renames a DB instance or cluster at once
and lets a rename overwrite a name that is taken, and a renamed cluster loses its instances;
RDS does none of this:

- A rename (ModifyDBInstance / ModifyDBCluster with a new identifier) is asynchronous: the
  database keeps its old identifier with status `renaming` for a while, then answers under the
  new one. Here the rename completes after RENAME_DESCRIBES further Describe calls
  (environment ROLLBACK_MOTO_RENAME_DESCRIBES, default 2; 0 renames at once), a count rather
  than a time because the local engine's clock is virtual.
- A rename onto an identifier that exists is refused (DBInstanceAlreadyExists /
  DBClusterAlreadyExistsFault), and so is a rename of a database that is not `available`
  (InvalidDBInstanceState / InvalidDBClusterStateFault), e.g. one that is already renaming.
- Creating a cluster (CreateDBCluster, RestoreDBClusterFromSnapshot,
  RestoreDBClusterToPointInTime) under an identifier that exists is refused with
  DBClusterAlreadyExistsFault. moto replaces the existing cluster instead, or, within the same
  minute, fails with DBClusterSnapshotAlreadyExistsFault from its automated backup's name: an
  SDK retry after a lost answer then looked like a failed restore.

Loaded by `serve.py` beside this file.
"""

import os
import threading

from moto.rds import models
from moto.rds.exceptions import RDSClientError

RENAME_DESCRIBES = int(os.environ.get("ROLLBACK_MOTO_RENAME_DESCRIBES", "2"))

_lock = threading.RLock()
# (backend id, kind, old id) -> [new id, describes left]
_pending = {}


class _AlreadyExists(RDSClientError):
    def __init__(self, code, what):
        super().__init__(code, f"{what} already exists")


def _tick(backend):
    """One Describe call went by: finish the renames whose time has come."""
    with _lock:
        for key in list(_pending):
            owner, kind, old = key
            if owner != id(backend):
                continue
            entry = _pending[key]
            entry[1] -= 1
            if entry[1] > 0:
                continue
            del _pending[key]
            _finish(backend, kind, old, entry[0])


def _finish(backend, kind, old, new):
    if kind == "instance":
        db = backend.databases.pop(old, None)
        if db is None:
            return
        db.db_instance_identifier = new
        db.status = "available"
        backend.databases[new] = db
    else:
        cluster = backend.clusters.pop(old, None)
        if cluster is None:
            return
        cluster.db_cluster_identifier = new
        cluster.status = "available"
        backend.clusters[new] = cluster
        # RDS keeps a renamed cluster's instances; moto finds members by cluster id.
        for db in backend.databases.values():
            if getattr(db, "db_cluster_identifier", None) == old:
                db.db_cluster_identifier = new


def _renaming_to(backend, kind, new):
    with _lock:
        return any(
            owner == id(backend) and k == kind and entry[0] == new
            for (owner, k, _), entry in _pending.items()
        )


_modify_db_instance = models.RDSBackend.modify_db_instance
_modify_db_cluster = models.RDSBackend.modify_db_cluster
_describe_db_instances = models.RDSBackend.describe_db_instances
_describe_db_clusters = models.RDSBackend.describe_db_clusters
_create_db_cluster = models.RDSBackend.create_db_cluster


# What differs between the two kinds: where moto keeps them and RDS's error codes.
_KINDS = {
    "instance": ("databases", "DB instance", "DBInstanceAlreadyExists", "InvalidDBInstanceState"),
    "cluster": ("clusters", "DB cluster", "DBClusterAlreadyExistsFault", "InvalidDBClusterStateFault"),
}


def _refuse_rename(backend, kind, old, new, status):
    """RDS's checks before a rename: the new name is free, the database is available."""
    store, what, taken_code, state_code = _KINDS[kind]
    if new in getattr(backend, store) or _renaming_to(backend, kind, new):
        raise _AlreadyExists(taken_code, what)
    if status != "available":
        raise RDSClientError(state_code, f"{what} {old} is {status}, not available.")


def _mark_renaming(backend, kind, old, new, *states):
    with _lock:
        for state in states:
            state.status = "renaming"
        _pending[(id(backend), kind, old)] = [new, RENAME_DESCRIBES]


def modify_db_instance(self, db_instance_identifier, db_kwargs):
    old, new = db_instance_identifier, db_kwargs.get("new_db_instance_identifier")
    if not new or new == old:
        return _modify_db_instance(self, old, db_kwargs)
    database = _describe_db_instances(self, old)[0]
    _refuse_rename(self, "instance", old, new, database.status)
    if RENAME_DESCRIBES <= 0:
        return _modify_db_instance(self, old, db_kwargs)
    rest = {k: v for k, v in db_kwargs.items() if k != "new_db_instance_identifier"}
    database = _modify_db_instance(self, old, rest)
    _mark_renaming(self, "instance", old, new, database)
    return database


def modify_db_cluster(self, kwargs):
    old, new = kwargs["db_cluster_identifier"], kwargs.get("new_db_cluster_identifier")
    if not new or new == old:
        return _modify_db_cluster(self, kwargs)
    cluster = _describe_db_clusters(self, old)[0]
    _refuse_rename(self, "cluster", old, new, cluster.status)
    if RENAME_DESCRIBES <= 0:
        return _modify_db_cluster(self, kwargs)
    rest = {k: v for k, v in kwargs.items() if k != "new_db_cluster_identifier"}
    # moto answers with a copy of the cluster: both show the rename.
    answer = _modify_db_cluster(self, rest)
    _mark_renaming(self, "cluster", old, new, cluster, answer)
    return answer


def create_db_cluster(self, kwargs):
    new = kwargs["db_cluster_identifier"]
    if new in self.clusters or _renaming_to(self, "cluster", new):
        raise _AlreadyExists("DBClusterAlreadyExistsFault", "DB cluster")
    return _create_db_cluster(self, kwargs)


def describe_db_instances(self, *args, **kwargs):
    _tick(self)
    return _describe_db_instances(self, *args, **kwargs)


def describe_db_clusters(self, *args, **kwargs):
    _tick(self)
    return _describe_db_clusters(self, *args, **kwargs)


def _forget_pending_on_reset():
    reset = models.RDSBackend.reset

    def wrapped(self):
        with _lock:
            for key in [k for k in _pending if k[0] == id(self)]:
                del _pending[key]
        return reset(self)

    models.RDSBackend.reset = wrapped


models.RDSBackend.modify_db_instance = modify_db_instance
models.RDSBackend.modify_db_cluster = modify_db_cluster
models.RDSBackend.create_db_cluster = create_db_cluster
models.RDSBackend.describe_db_instances = describe_db_instances
models.RDSBackend.describe_db_clusters = describe_db_clusters
_forget_pending_on_reset()
