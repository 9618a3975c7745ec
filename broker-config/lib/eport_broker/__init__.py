"""eport_broker: generator and validator of eport-edge site brokers
(Mosquitto 2.0). Modules: inventory (input), render (text), pki (certificates
via pki/eport-pki), broker (run and probe mosquitto), cli (commands)."""
