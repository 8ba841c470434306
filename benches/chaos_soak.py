#!/usr/bin/env python3
"""Chaos soak (not a test): 100 simulated meters at the shipped defaults (60 s interval,
default client id, gateway mode), a few of them behind a fault proxy (silence, resets,
refused connections), random broker outages (5 s to 5 min) and restarts, and kill -9 of the
bridge every ~10 minutes (restarted at once, as a service manager would). Every 10 s it
samples the bridge's RSS, open fds, threads and outbox depth; at the end it reports, per
meter, delivered readings against the expected count, duplicates and the largest gaps.

Run: python3 -m pip install paho-mqtt==2.1.0; cargo build --release;
     python3 benches/chaos_soak.py --minutes 60 --out docs/chaos-soak.csv
Talks only to 127.0.0.1. Needs mosquitto.
"""
import argparse, json, os, random, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request

import paho.mqtt.client as mqtt

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "dlms-bridge")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class FaultProxy(threading.Thread):
    """Forwards 127.0.0.1:listen to the meter at 127.0.0.1:target; every 1-3 minutes picks a
    mode: pass, silence (accepts, forwards nothing), reset (accepts, closes at once), refuse
    (not listening)."""

    def __init__(self, listen, target, log):
        super().__init__(daemon=True)
        self.listen, self.target, self.mode, self.log = listen, target, "pass", log
        self.server = None

    def open(self):
        if self.server is None:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.listen))
            s.listen(8)
            s.settimeout(0.5)
            self.server = s

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None

    def pipe(self, a, b):
        try:
            while True:
                d = a.recv(4096)
                if not d:
                    break
                if self.mode == "pass":
                    b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def run(self):
        next_switch = time.time() + random.uniform(60, 180)
        self.open()
        while True:
            if time.time() > next_switch:
                self.mode = random.choice(["pass", "pass", "silence", "reset", "refuse"])
                self.log(f"proxy {self.listen}: {self.mode}")
                next_switch = time.time() + random.uniform(60, 180)
                if self.mode == "refuse":
                    self.close()
                else:
                    self.open()
            if self.server is None:
                time.sleep(0.5)
                continue
            try:
                c, _ = self.server.accept()
            except OSError:
                continue
            if self.mode == "reset":
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                c.close()
                continue
            threading.Thread(target=self.pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self.pipe, args=(u, c), daemon=True).start()


def proc_field(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        return -1
    return -1


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--meters", type=int, default=100)
    ap.add_argument("--faulty", type=int, default=3)
    ap.add_argument("--kill-every-s", type=float, default=600)
    ap.add_argument("--out", default="chaos-soak.csv")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    random.seed(a.seed)
    work = tempfile.mkdtemp(prefix="chaos-soak-")
    events = open(os.path.join(work, "events.log"), "w")
    started = time.time()

    def log(msg):
        line = f"{time.time() - started:8.1f} {msg}"
        print(line, flush=True)
        events.write(line + "\n")
        events.flush()

    mport, http = free_port(), free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {mport} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                f"persistence_location {work}/\nmax_queued_messages 0\n")
    broker = [None]

    def broker_up():
        broker[0] = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def broker_down():
        broker[0].send_signal(signal.SIGTERM)
        broker[0].wait()

    broker_up()
    base = free_port() + 1000
    sim = subprocess.Popen([BIN, "simulate", "--meters", str(a.meters), "--port-base", str(base)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meters = []
    for i in range(a.meters):
        port = base + i
        if i < a.faulty:
            listen = free_port()
            FaultProxy(listen, port, log).start()
            port = listen
        meters.append({"name": f"Soak {i:03}", "host": "127.0.0.1", "port": port})
    db = os.path.join(work, "bridge.db")
    imp = subprocess.run([BIN, "meter", "import", "-", "--db", db], input=json.dumps(meters),
                         text=True, capture_output=True)
    assert imp.returncode == 0, imp.stderr
    for k, v in [("mqtt.port", mport), ("http.bind", f"127.0.0.1:{http}")]:
        subprocess.run([BIN, "settings", "set", k, str(v), "--db", db], check=True,
                       capture_output=True)

    seen = {}
    lock = threading.Lock()
    dup = [0]

    def on_message(_c, _u, msg):
        try:
            v = json.loads(msg.payload)
        except ValueError:
            return
        with lock:
            for dev, items in v.items():
                for it in items:
                    # Alarm telemetry (alarm_type) travels the same way; only readings count.
                    if "alarm_type" in it.get("values", {}):
                        continue
                    key = (dev, it["ts"])
                    if key in seen:
                        dup[0] += 1
                    seen[key] = it["values"]

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="chaos-soak-sub",
                      clean_session=False)
    sub.on_message = on_message
    sub.on_connect = lambda c, *_: c.subscribe("v1/gateway/telemetry", qos=1)
    sub.reconnect_delay_set(1, 2)
    sub.connect_async("127.0.0.1", mport)
    sub.loop_start()

    bridge = [None]
    blog = os.path.join(work, "bridge.log")

    def bridge_start():
        bridge[0] = subprocess.Popen([BIN, "run", "--db", db, "--log-file", blog],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    bridge_start()
    csv = open(a.out, "w")
    csv.write("t_s,rss_kib,fds,threads,outbox_depth,published_readings,connected,broker_up\n")
    end = started + a.minutes * 60
    next_kill = started + random.uniform(0.7, 1.3) * a.kill_every_s
    next_outage = started + random.uniform(60, 240)
    outage_until = None
    kills, outages = 0, []
    next_sample = time.time()
    while time.time() < end:
        now = time.time()
        if outage_until is None and now >= next_outage:
            length = random.choice([5, 15, 30, 60, 120, 300])
            broker_down()
            outage_until = now + length
            outages.append(length)
            log(f"broker down for {length} s")
        if outage_until is not None and now >= outage_until:
            broker_up()
            outage_until = None
            next_outage = now + random.uniform(120, 420)
            log("broker up")
        if now >= next_kill:
            bridge[0].kill()
            bridge[0].wait()
            kills += 1
            log("bridge killed (-9), restarting")
            bridge_start()
            next_kill = now + random.uniform(0.7, 1.3) * a.kill_every_s
        if now >= next_sample:
            pid = bridge[0].pid
            try:
                st = json.load(urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=3))
                p = st["publisher"]
                depth, pub, conn = p["outbox_depth"], p.get("published_readings", -1), p["connected"]
            except Exception:
                depth, pub, conn = -1, -1, None
            csv.write(f"{now - started:.0f},{proc_field(pid, 'VmRSS:')},{fds(pid)},"
                      f"{proc_field(pid, 'Threads:')},{depth},{pub},{conn},{outage_until is None}\n")
            csv.flush()
            next_sample = now + 10
        time.sleep(0.5)
    if outage_until is not None:
        broker_up()
        log("broker up (end)")
    # Drain: the backlog must be gone within 90 s of the broker's return.
    drain_start = time.time()
    drained = None
    while time.time() - drain_start < 120:
        try:
            st = json.load(urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=3))
            if st["publisher"]["outbox_depth"] == 0 and st["publisher"]["connected"]:
                drained = time.time() - drain_start
                break
        except Exception:
            pass
        time.sleep(1)
    time.sleep(5)
    bridge[0].send_signal(signal.SIGTERM)
    t = time.time()
    bridge[0].wait(timeout=20)
    stop_s = time.time() - t
    time.sleep(2)
    sub.loop_stop()
    sim.kill()
    broker_down()
    elapsed = time.time() - started
    with lock:
        per = {}
        for (dev, ts) in seen:
            per.setdefault(dev, []).append(ts)
    healthy = [m["name"] for i, m in enumerate(meters) if i >= a.faulty]
    expected = int(elapsed // 60)
    worst_gap, gaps = 0, 0
    short = 0
    for name in healthy:
        ts = sorted(per.get(name, []))
        if len(ts) < expected - 2:
            short += 1
        for x, y in zip(ts, ts[1:]):
            g = (y - x) / 1000
            worst_gap = max(worst_gap, g)
            if g > 125:
                gaps += 1
    log_text = open(blog, errors="replace").read()
    summary = {
        "minutes": round(elapsed / 60, 1), "meters": a.meters, "faulty": a.faulty,
        "kills": kills, "outages_s": outages, "delivered": len(seen), "duplicates": dup[0],
        "expected_per_healthy_meter": expected,
        "healthy_meters_short_by_more_than_2": short,
        "healthy_gaps_over_2_intervals": gaps, "worst_healthy_gap_s": worst_gap,
        "drained_after_s": drained, "sigterm_exit_s": round(stop_s, 1),
        "no_answer_to_connect_lines": log_text.count("no answer to CONNECT"),
        "refused_by_library_lines": log_text.count("Max buffered"),
        "work_dir": work,
    }
    with open(os.path.join(work, "delivered.json"), "w") as f:
        json.dump({d: sorted(t) for d, t in per.items()}, f)
    print(json.dumps(summary, indent=1))
    with open(a.out + ".summary.json", "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
