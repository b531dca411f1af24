"""Redis key naming: every key under one prefix, with hash tags for Redis Cluster.

Keys that are touched together in one command or transaction share a hash
tag (the part in braces), so they land in the same cluster slot: all keys
of one VNF instance share ``{vnf:<id>}``; each stream has its own tag.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Builds every key the project uses from one configurable prefix."""

    prefix: str = "nfva"
    """Prepended to every key, so several deployments can share one Redis."""

    def stream(self, name: str) -> str:
        """A stream: ``samples``, ``violations``, ``decisions``, ``op_results``,
        ``lcm_notifications``."""
        return f"{self.prefix}:{{stream:{name}}}"

    def dead_letters(self, name: str) -> str:
        """Where entries of stream ``name`` go when they cannot be handled."""
        return f"{self.prefix}:{{stream:{name}}}:dead"

    def series_defs(self, generation: int) -> str:
        """Hash of the series definitions registered in one generation: id -> definition."""
        return f"{self.prefix}:{{series}}:defs:{generation}"

    # --- inventory -------------------------------------------------------
    def vnf_index(self) -> str:
        """Set of all VNF instance ids."""
        return f"{self.prefix}:{{inventory}}:vnfs"

    def inventory_changes(self) -> str:
        """Stream of the ids of VNF instances saved or deleted, in order (field ``vnf``)."""
        return f"{self.prefix}:{{inventory}}:changes"

    def vnf(self, vnf_id: str) -> str:
        """One VNF instance record (JSON), VNFCs included."""
        return f"{self.prefix}:{{vnf:{vnf_id}}}:record"

    def vnf_lease(self, vnf_id: str) -> str:
        """The per-VNF actuation lease: one operation at a time per VNF."""
        return f"{self.prefix}:{{vnf:{vnf_id}}}:lease"

    def vnf_ops(self, vnf_id: str) -> str:
        """Sorted set of the VNF's LCM operation occurrence ids by start time."""
        return f"{self.prefix}:{{vnf:{vnf_id}}}:ops"

    def op(self, vnf_id: str, op_id: str) -> str:
        """One LCM operation occurrence (JSON)."""
        return f"{self.prefix}:{{vnf:{vnf_id}}}:op:{op_id}"

    def op_runner(self, vnf_id: str, op_id: str) -> str:
        """A lease held while a worker runs the occurrence: none held, nobody runs it."""
        return f"{self.prefix}:{{vnf:{vnf_id}}}:op:{op_id}:runner"

    def op_index(self) -> str:
        """Sorted set of ``vnf_id/op_id`` of all operations by start time."""
        return f"{self.prefix}:{{inventory}}:ops"

    def catalogue(self, kind: str) -> str:
        """Hash of the onboarded descriptors of ``kind`` (vnfd, nsd): ``ID@VERSION`` -> entry."""
        return f"{self.prefix}:{{catalogue}}:{kind}s"

    def catalogue_latest(self, kind: str) -> str:
        """Hash of the version of each descriptor of ``kind`` onboarded last: id -> version."""
        return f"{self.prefix}:{{catalogue}}:{kind}s:latest"

    # --- network services ------------------------------------------------
    def ns_version(self) -> str:
        """Counter bumped on every save or delete of an NS instance (readers reload on change)."""
        return f"{self.prefix}:{{inventory}}:ns:version"

    def ns_index(self) -> str:
        """Set of all NS instance ids."""
        return f"{self.prefix}:{{inventory}}:nss"

    def ns(self, ns_id: str) -> str:
        """One NS instance record (JSON)."""
        return f"{self.prefix}:{{ns:{ns_id}}}:record"

    def ns_lease(self, ns_id: str) -> str:
        """One NS lifecycle operation at a time per NS instance."""
        return f"{self.prefix}:{{ns:{ns_id}}}:lease"

    def sim_cloud(self, vim: str) -> str:
        """The whole state of simulated VIM ``vim`` (JSON), changed under WATCH."""
        return f"{self.prefix}:{{sim:{vim}}}:cloud"

    def sim_calls(self, vim: str) -> str:
        """Stream: the call log of simulated VIM ``vim``, written with each change."""
        return f"{self.prefix}:{{sim:{vim}}}:calls"

    # --- stage state -----------------------------------------------------
    def idempotency(self, decision_id: str) -> str:
        """Marks a decision as taken by the actuator (value: operation id)."""
        return f"{self.prefix}:{{decision:{decision_id}}}:op"

    def policy_loop(self, vnf_id: str) -> str:
        """The closed loop's record of one VNF: open conditions, episodes, guard marks."""
        return f"{self.prefix}:{{vnf:{vnf_id}}}:loop"

    def policy_due(self) -> str:
        """Sorted set of VNF ids by when their closed loop next has something to do."""
        return f"{self.prefix}:{{policy}}:due"

    def policy_slots(self) -> str:
        """Sorted set of the decisions running now (the global concurrency cap), by start."""
        return f"{self.prefix}:{{policy}}:slots"

    def policy_host_slots(self) -> str:
        """Hash: decision id -> the host its operation touches (the per-host cap)."""
        return f"{self.prefix}:{{policy}}:slot-hosts"

    def policy_modes(self) -> str:
        """Hash: policy name -> the mode an operator set (over the file's)."""
        return f"{self.prefix}:{{policy}}:modes"

    def policy_replacements(self) -> str:
        """Hash: policy name -> the YAML text an operator replaced it with (over the file's)."""
        return f"{self.prefix}:{{policy}}:replacements"

    def policy_optouts(self) -> str:
        """Hash: ``vnf:<id>`` or ``host:<name>`` -> why automation is off for it."""
        return f"{self.prefix}:{{policy}}:optouts"

    def policy_approvals(self) -> str:
        """Hash: decision id -> an operator's answer (JSON)."""
        return f"{self.prefix}:{{policy}}:approvals"

    def policy_onsets(self) -> str:
        """Sorted set of recent ONSET violation ids by arrival (the blast-radius breaker)."""
        return f"{self.prefix}:{{policy}}:onsets"

    def policy_failing_hosts(self) -> str:
        """Set of ``<host>|<violation id>`` of the host violations open now."""
        return f"{self.prefix}:{{policy}}:failing-hosts"

    def policy_status(self) -> str:
        """Hash of what the policy workers loaded: files, problems, when."""
        return f"{self.prefix}:{{policy}}:status"

    def violation_vnfs(self, violation_id: str) -> str:
        """Set of the VNFs a violation was routed to (its ABATED follows the same way)."""
        return f"{self.prefix}:{{violation:{violation_id}}}:vnfs"

    def audit_decision(self, decision_id: str) -> str:
        """One decision's audit record: which episode it belongs to (JSON)."""
        return f"{self.prefix}:{{audit}}:decision:{decision_id}"

    def audit_episode(self, episode_id: str) -> str:
        """One episode's audit record: the violation, every step, guard and result (JSON)."""
        return f"{self.prefix}:{{audit}}:episode:{episode_id}"

    def audit_index(self) -> str:
        """Sorted set of decision ids by when they were decided."""
        return f"{self.prefix}:{{audit}}:decisions"

    def heartbeat(self, role: str, host: str) -> str:
        """When a role on a host last showed it runs (wall epoch seconds, with a TTL)."""
        return f"{self.prefix}:{{heartbeat}}:{role}:{host}"

    def violation_state(self, violation_id: str) -> str:
        """The last known state of one violation (ONSET or ABATED)."""
        return f"{self.prefix}:{{violation:{violation_id}}}"

    def detector_state(self) -> str:
        """Hash of the analytics detectors' open episodes (pending or firing).

        Field: ``<condition key>|<target key>``; value: the state as JSON. One
        hash tag, so a restarted worker loads every open episode in one call.
        """
        return f"{self.prefix}:{{analytics}}:detectors"

    def shard_members(self, group: str) -> str:
        """Sorted set of the live workers of a sharded group, scored by membership expiry."""
        return f"{self.prefix}:{{shards:{group}}}:members"

    def shard_lease(self, group: str, shard: int) -> str:
        """The lease of one shard of a sharded group (value: the worker holding it)."""
        return f"{self.prefix}:{{shards:{group}}}:lease:{shard}"

    # --- the API -----------------------------------------------------------
    def alert_ledger(self, part: str) -> str:
        """What the Alertmanager webhook knows of each alert episode it queued.

        ``part``: ``status`` (hash: violation id -> ONSET/ABATED), ``onset``
        (hash: violation id -> the queued ONSET), ``seen`` (sorted set: violation
        id -> last notification time). Same hash tag as the violations stream,
        so recording and queueing are one atomic step on Redis Cluster too.
        """
        return f"{self.prefix}:{{stream:violations}}:alerts:{part}"

    def api_view(self, name: str) -> str:
        """A view the API keeps of the event streams (``open``, ``counts``)."""
        return f"{self.prefix}:{{api}}:view:{name}"

    def api_created_vnfs(self) -> str:
        """Hash of VNF instances created through the API and not instantiated yet (JSON)."""
        return f"{self.prefix}:{{api}}:created-vnfs"

    def api_tokens(self) -> str:
        """Hash of API tokens: SHA-256 of the token -> its record (JSON), never the token."""
        return f"{self.prefix}:{{api}}:tokens"

    def api_bootstrap(self) -> str:
        """Set once the first admin token was handed out, so it is handed out once."""
        return f"{self.prefix}:{{api}}:bootstrap"

    def host_faults(self) -> str:
        """Hash of the firing host-scope violations: ``<host>|<policy>/<condition>`` -> id."""
        return f"{self.prefix}:{{analytics}}:host-faults"

    def sample_history(self, shard: int, segment: int) -> str:
        """List of one segment of a shard's recent samples (packed batches, oldest first)."""
        return f"{self.prefix}:{{history:{shard}}}:segment:{segment}"

    def sample_history_head(self, shard: int) -> str:
        """Hash of where a shard's sample history stands: newest ``segment``, ``through``
        (the samples-stream entry up to which it holds what the shard needs)."""
        return f"{self.prefix}:{{history:{shard}}}:head"

    def scoring_state(self, shard: int) -> str:
        """Hash of the anomaly scorers' state of a shard's targets:
        ``<policy>/<condition>|<target key>`` -> the target and its state."""
        return f"{self.prefix}:{{history:{shard}}}:scoring"

    def model(self, name: str) -> str:
        """Hash of one anomaly model (one per KPI and VNFD): version, calibration, blob."""
        return f"{self.prefix}:{{model:{name}}}:model"

    def model_training(self, name: str) -> str:
        """Held (with a TTL) by the worker training one anomaly model."""
        return f"{self.prefix}:{{model:{name}}}:training"

    def model_history(self, name: str) -> str:
        """List of the residual rows one anomaly model learns from (float32, the newest kept)."""
        return f"{self.prefix}:{{model:{name}}}:history"
