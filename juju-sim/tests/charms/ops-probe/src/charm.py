#!/usr/bin/env python3
"""A charm written with ops, run under the simulator: if ops cannot parse a tool's output, the
simulator is wrong."""

import ops


class OpsProbe(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.peers_relation_changed, self._on_peers_changed)
        framework.observe(self.on.db_relation_changed, self._on_db_changed)
        framework.observe(self.on.report_action, self._on_report)

    def _on_config_changed(self, event):
        name = self.config["name"]
        count = self.config["count"]
        peers = self.model.get_relation("peers")
        peers.data[self.unit]["hello"] = f"{name}-{count}"
        if self.unit.is_leader():
            try:
                secret = self.model.get_secret(label="token")
                secret.set_content({"token": f"t0k3n-{name}"})
            except ops.SecretNotFoundError:
                secret = self.app.add_secret({"token": f"t0k3n-{name}"}, label="token")
            peers.data[self.app]["token-id"] = secret.id
            self.app.status = ops.ActiveStatus("leader ready")
        self.unit.status = ops.ActiveStatus(f"name={name} count={count}")

    def _on_peers_changed(self, event):
        token_id = event.relation.data[self.app].get("token-id")
        if not token_id or self.unit.is_leader():
            return
        content = self.model.get_secret(id=token_id).get_content(refresh=True)
        self.unit.status = ops.ActiveStatus(f"token={content['token']}")

    def _on_db_changed(self, event):
        if event.unit is None:
            return
        colour = event.relation.data[event.unit].get("colour", "none")
        event.relation.data[self.unit]["echo"] = colour
        if self.unit.is_leader():
            event.relation.data[self.app]["leader-saw"] = colour

    def _on_report(self, event):
        peers = self.model.get_relation("peers")
        event.set_results({
            "units": str(len(peers.units)),
            "prefix": event.params["prefix"],
            "address": str(self.model.get_binding("peers").network.bind_address),
        })


if __name__ == "__main__":
    ops.main(OpsProbe)
