"""Three private RabbitMQ nodes joined into one cluster, for tests that lose a node."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from directdl_testing.private_broker import PrivateBroker, PrivateBrokerError

SIZE = 3


class BrokerCluster:
    """`SIZE` nodes of their own (ports, data, logs), the second and later joined to the first
    with `rabbitmqctl join_cluster`. The shared broker on 5672 is never part of it.

    `url` lists every node's URL, comma-separated, as AMQP_URL takes them. Use it as a context
    manager: the nodes start (in parallel) and join on entry, and stop on exit.
    """

    def __init__(self, size: int = SIZE) -> None:
        self.nodes = [PrivateBroker() for _ in range(size)]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def __enter__(self) -> BrokerCluster:
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(PrivateBroker.start, self.nodes))
            seed = self.nodes[0]
            for node in self.nodes[1:]:
                node.join(seed.node)
            self._check_running()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def node_named(self, name: str) -> PrivateBroker:
        for node in self.nodes:
            if node.node == name:
                return node
        raise PrivateBrokerError(f"{name} is not a node of this cluster")

    def running_nodes(self, through: PrivateBroker | None = None) -> list[str]:
        status = json.loads((through or self.nodes[0]).ctl("cluster_status", "--formatter", "json"))
        return sorted(status["running_nodes"])

    def queues(self, vhost: str, through: PrivateBroker | None = None) -> list[dict[str, object]]:
        """Every queue of `vhost` with its type, leader, members and the members online, as a
        node reports them."""
        columns = ("name", "type", "leader", "members", "online")
        out = (through or self.nodes[0]).ctl(
            "list_queues", "-p", vhost, *columns, "--formatter", "json"
        )
        queues: list[dict[str, object]] = json.loads(out)
        return queues

    def _check_running(self) -> None:
        expected = sorted(node.node for node in self.nodes)
        running = self.running_nodes()
        if running != expected:
            raise PrivateBrokerError(f"the cluster runs {running}, not {expected}")
