//! awsvpc networking through the real binary: each task its own network
//! namespace, interface and address on a Berth bridge, containers of a
//! task sharing localhost, security groups between tasks. Traffic goes
//! only to addresses inside the test Berth's own subnet (a /24 that
//! testinfra leases to this data dir). Needs root.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use berth_testinfra::server::BerthProcess;
use serde_json::{Value, json};

mod common;
use common::{World, bin, can_run, task_id};

/// How long a task may take to reach a status.
const MINUTE: Duration = Duration::from_secs(60);

impl World {
    fn container(&self, name: &str, script: &str) -> Value {
        json!({"name": name, "image": self.registry.reference("busybox:latest"), "command": ["sh", "-c", script],
               "stopTimeout": 1})
    }

    fn register(&self, family: &str, containers: Vec<Value>) {
        self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": "256", "memory": "512", "containerDefinitions": containers}),
        );
    }

    fn run(&self, family: &str, groups: &[&str]) -> String {
        let mut awsvpc = json!({"subnets": ["subnet-default"]});
        if !groups.is_empty() {
            awsvpc["securityGroups"] = json!(groups);
        }
        let v = self
            .ecs("RunTask", json!({"taskDefinition": family, "networkConfiguration": {"awsvpcConfiguration": awsvpc}}));
        assert_eq!(v["failures"], json!([]), "{v}");
        v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
    }

    /// The container's exit code once it exited (waits).
    fn exit_code(&self, arn: &str, container: &str) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = self.describe(arn);
            let c = t["containers"].as_array().unwrap().iter().find(|c| c["name"] == container).unwrap().clone();
            if let Some(code) = c["exitCode"].as_i64() {
                return code;
            }
            assert!(Instant::now() < deadline, "{container} did not exit: {t:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn detail(task: &Value, name: &str) -> String {
    task["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .and_then(|d| d["value"].as_str())
        .unwrap_or_else(|| panic!("no {name}: {task:#}"))
        .to_owned()
}

/// GET http://ip:port/path from the host, bounded in time.
fn http_get(ip: Ipv4Addr, port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// [`http_get`] until the server answers (it may still be starting when
/// its task is RUNNING): at most 50 tries over 5 s.
fn http_get_ready(ip: Ipv4Addr, port: u16, path: &str) -> String {
    let mut last = None;
    for _ in 0..50 {
        match http_get(ip, port, path) {
            Ok(body) if !body.is_empty() => return body,
            other => last = Some(other),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{ip}:{port} did not answer: {last:?}");
}

/// A busybox httpd on port 8080 serving `text` at /index.html.
fn web(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 8080 -h /www")
}

#[test]
fn each_task_has_its_own_address_and_its_containers_share_localhost() {
    if !can_run("each_task_has_its_own_address_and_its_containers_share_localhost") {
        return;
    }
    let w = World::start_with(&["--bridge-idle", "1"]);
    let mut probe = w.container(
        "probe",
        "for i in $(seq 50); do (printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 1 127.0.0.1 8080 > /tmp/got && \
         grep -q hello-a /tmp/got && break; sleep 0.1; done; grep -q hello-a /tmp/got && grep -q \"$(hostname)\" /etc/hosts",
    );
    probe["essential"] = json!(false);
    w.register("web", vec![w.container("web", &web("hello-a")), probe]);
    let a = w.run("web", &[]);
    let b = w.run("web", &[]);
    let (ta, tb) = (w.wait_for(&a, "RUNNING", MINUTE), w.wait_for(&b, "RUNNING", MINUTE));
    let (ip_a, ip_b) = (detail(&ta, "privateIPv4Address"), detail(&tb, "privateIPv4Address"));
    assert_ne!(ip_a, ip_b, "two tasks, two addresses");
    for t in [&ta, &tb] {
        assert_eq!(t["attachments"][0]["type"], "ElasticNetworkInterface");
        assert_eq!(t["attachments"][0]["status"], "ATTACHED");
        assert_eq!(detail(t, "subnetId"), "subnet-default");
        assert!(detail(t, "networkInterfaceId").starts_with("eni-"));
        assert!(detail(t, "macAddress").starts_with("02:be:"), "{t:#}");
        let ip = detail(t, "privateIPv4Address");
        assert_eq!(detail(t, "privateDnsName"), format!("ip-{}.ec2.internal", ip.replace('.', "-")));
        assert_eq!(t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"], ip.as_str());
        assert_eq!(t["connectivity"], "CONNECTED");
    }
    // The host reaches each task at its address and port.
    let ip_a: Ipv4Addr = ip_a.parse().unwrap();
    let got = http_get_ready(ip_a, 8080, "/");
    assert!(got.contains("hello-a"), "{got}");
    // A second container of the task reached the first on 127.0.0.1.
    assert_eq!(w.exit_code(&a, "probe"), 0, "the probe container reached httpd on localhost: {:#}", w.describe(&a));

    // The subnet shows two addresses in use, and gets them back at stop.
    let free = |w: &World| {
        let v = w.operator("ListSubnets", json!({}));
        v["subnets"].as_array().unwrap().iter().find(|s| s["subnetId"] == "subnet-default").unwrap()["availableIpAddressCount"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(free(&w), 256 - 3 - 2);
    for arn in [&a, &b] {
        w.ecs("StopTask", json!({"task": arn}));
    }
    for arn in [&a, &b] {
        let t = w.wait_for(arn, "STOPPED", MINUTE);
        assert_eq!(t["attachments"][0]["status"], "DELETED");
    }
    assert_eq!(free(&w), 256 - 3);
    // Gone from the host: no namespace file left, and no route to the
    // subnet but Berth's blackhole (checked on the host's tables, without
    // sending a packet).
    let netns: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    for arn in [&a, &b] {
        let id = task_id(&arn);
        let id = id.as_str();
        assert!(!netns.iter().any(|n| n.contains(id)), "the namespace of {id} is gone");
    }
    let subnet = w.berth.net.as_ref().unwrap().cidr.clone();
    let network = subnet.split('/').next().unwrap();
    let hex = format!("{:08X}", u32::from(network.parse::<Ipv4Addr>().unwrap()).swap_bytes());
    let to_subnet = || {
        let routes = std::fs::read_to_string("/proc/net/route").unwrap();
        routes
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(hex.as_str()))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // The bridge (and its route) goes `--bridge-idle 1` s after its last
    // task, on the agent's next refresh (every 2 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    while to_subnet().iter().any(|l| !l.starts_with('*')) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left = to_subnet();
    assert!(
        left.iter().all(|l| l.starts_with('*')),
        "the bridge (and its route) went after its last task; only the blackhole route is left: {left:?}"
    );
    assert_eq!(left.len(), 1, "traffic for the subnet is dropped on the host, never routed off it: {left:?}");
}

/// A task's resolver is Berth's DNS server on its subnet's gateway: the
/// one nameserver of its read-only /etc/resolv.conf, which answers the
/// task's own private DNS name.
#[test]
fn tasks_resolve_through_berth_dns_on_their_gateway() {
    if !can_run("tasks_resolve_through_berth_dns_on_their_gateway") {
        return;
    }
    let w = World::start_with(&["--bridge-idle", "1"]);
    let script = "ns=$(awk '/^nameserver/ {print $2}' /etc/resolv.conf); \
         [ \"$(grep -c '^nameserver' /etc/resolv.conf)\" = 1 ] || exit 2; \
         if echo x >> /etc/resolv.conf 2>/dev/null; then exit 3; fi; \
         me=$(hostname); ip=$(echo ${me%%.*} | cut -c4- | tr - .); \
         [ \"$ns\" = \"$(echo $ip | cut -d. -f1-3).1\" ] || exit 5; \
         for i in $(seq 100); do nslookup \"$me\" \"$ns\" 2>/dev/null | tail -n +3 | grep -qw \"$ip\" && exit 0; sleep 0.2; done; \
         exit 4";
    w.register("dns", vec![w.container("dns", script)]);
    let arn = w.run("dns", &[]);
    assert_eq!(w.exit_code(&arn, "dns"), 0, "2: not one nameserver, 3: resolv.conf writable, 5: not the gateway, 4: no answer: {:#}", w.describe(&arn));
}

#[test]
fn security_groups_allow_and_deny_between_tasks() {
    if !can_run("security_groups_allow_and_deny_between_tasks") {
        return;
    }
    let w = World::start();
    let client = w.operator("CreateSecurityGroup", json!({"groupName": "client"}))["securityGroup"]["groupId"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = w.operator(
        "CreateSecurityGroup",
        json!({"groupName": "server", "ingress": [{"ipProtocol": "tcp", "fromPort": 8080, "toPort": 8080, "sourceGroupId": client}]}),
    )["securityGroup"]["groupId"]
        .as_str()
        .unwrap()
        .to_owned();
    w.register("server", vec![w.container("web", &web("hello-server"))]);
    let srv = w.run("server", &[&server]);
    let ip = detail(&w.wait_for(&srv, "RUNNING", MINUTE), "privateIPv4Address");

    // A member of `client` gets through; a task in the default group does not.
    // (busybox nc: its static wget needs glibc's NSS modules, which a bare image lacks.)
    // busybox nc quits at the end of its input: keep it open until the answer is in.
    let fetch = format!("(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 2 {ip} 8080 | grep -q hello-server");
    w.register("allowed", vec![w.container("fetch", &fetch)]);
    w.register("denied", vec![w.container("fetch", &fetch)]);
    let allowed = w.run("allowed", &[&client]);
    let denied = w.run("denied", &[]);
    assert_eq!(w.exit_code(&allowed, "fetch"), 0, "client → server:8080 is allowed: {:#}", w.describe(&allowed));
    assert_ne!(w.exit_code(&denied, "fetch"), 0, "default group → server:8080 is denied");
    // The host still reaches the server (host traffic is not filtered).
    assert!(http_get_ready(ip.parse().unwrap(), 8080, "/").contains("hello-server"));

    // Revoking the rule closes the door for new connections of a new client task.
    w.operator(
        "RevokeSecurityGroupIngress",
        json!({"groupId": server, "rules": [{"ipProtocol": "tcp", "fromPort": 8080, "toPort": 8080, "sourceGroupId": client}]}),
    );
    std::thread::sleep(Duration::from_secs(3)); // the agent re-renders the firewall every 2 s
    let late = w.run("allowed", &[&client]);
    assert_ne!(w.exit_code(&late, "fetch"), 0, "after revoke, client → server:8080 is denied");
    // A group in use cannot be deleted.
    let (status, v) = w.berth.operator("DeleteSecurityGroup", &json!({"groupId": server})).unwrap();
    assert_eq!((status, v["__type"].as_str()), (400, Some("DependencyViolation")), "{v}");
}

/// Runs `berth ARGS --output json` against `berth`.
fn cli(berth: &BerthProcess, args: &[&str]) -> (bool, Value, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .args(["--output", "json", "--data-dir"])
        .arg(&berth.data_dir)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("BERTH_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn subnet_and_sg_commands() {
    if !can_run("subnet_and_sg_commands") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let berth = BerthProcess::start(bin(), &dir.path().join("data"), &[], &[]).unwrap();
    let ok = |args: &[&str]| {
        let (success, v, stderr) = cli(&berth, args);
        assert!(success, "berth {args:?}: {stderr}");
        v
    };
    let v = ok(&["subnet", "ls"]);
    let ids: Vec<&str> = v["subnets"].as_array().unwrap().iter().map(|s| s["subnetId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["subnet-default"], "the default subnet exists from the first start");
    assert_eq!(v["subnets"][0]["cidrBlock"], berth.net.as_ref().unwrap().cidr.as_str());

    // Only records: no kernel object is made until a task uses the subnet.
    let v = ok(&["subnet", "create", "10.209.17.0/28", "--name", "small"]);
    let id = v["subnet"]["subnetId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("subnet-") && id.len() == "subnet-".len() + 17, "{id}");
    assert_eq!(v["subnet"]["availableIpAddressCount"], 13);
    assert_eq!(v["subnet"]["egress"], false);
    let (success, _, stderr) = cli(&berth, &["subnet", "create", "10.209.17.8/28"]);
    assert!(!success && stderr.contains("has host bits set"), "{stderr}");
    let (success, _, stderr) = cli(&berth, &["subnet", "create", "10.209.16.0/23"]);
    assert!(!success && stderr.contains("conflicts with subnet"), "{stderr}");

    let v = ok(&["sg", "create", "web", "--description", "http in"]);
    let sg = v["securityGroups"][0]["groupId"].as_str().unwrap().to_owned();
    ok(&["sg", "allow", &sg, "--protocol", "tcp", "--port", "8080", "--source", "10.0.0.0/8"]);
    let v = ok(&["sg", "allow", &sg, "--protocol", "all", "--source", &sg]);
    assert_eq!(v["securityGroups"][0]["ingress"].as_array().unwrap().len(), 2, "{v}");
    let (success, _, stderr) = cli(&berth, &["sg", "allow", &sg, "--port", "8080", "--source", "10.0.0.0/8"]);
    assert!(!success && stderr.contains("InvalidPermission.Duplicate"), "{stderr}");
    let (success, _, stderr) = cli(&berth, &["sg", "allow", &sg, "--port", "80", "--source", "sg-nope"]);
    assert!(!success && stderr.contains("'sg-nope' does not exist"), "{stderr}");
    let v = ok(&["sg", "revoke", &sg, "--protocol", "tcp", "--port", "8080", "--source", "10.0.0.0/8"]);
    assert_eq!(v["securityGroups"][0]["ingress"].as_array().unwrap().len(), 1, "{v}");
    let v = ok(&["sg", "ls"]);
    assert_eq!(v["securityGroups"].as_array().unwrap().len(), 2, "sg-default and web: {v}");
    let (success, _, stderr) = cli(&berth, &["sg", "delete", "sg-default"]);
    assert!(!success && stderr.contains("CannotDelete"), "{stderr}");
    ok(&["sg", "delete", &sg]);
    ok(&["subnet", "delete", &id]);
    let (success, _, stderr) = cli(&berth, &["subnet", "delete", &id]);
    assert!(!success && stderr.contains("InvalidSubnetID.NotFound"), "{stderr}");
    // Table output for people.
    let out =
        std::process::Command::new(bin()).args(["subnet", "ls", "--data-dir"]).arg(&berth.data_dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("SUBNET") && text.contains("subnet-default"), "{text}");
}

/// `sh` that GETs `$ECS_CONTAINER_METADATA_URI_V4` + `$1`-like `suffix`
/// (or another `id` in its place) with busybox nc, into `out`.
fn metadata_get(suffix: &str, id: Option<&str>, out: &str) -> String {
    let path = match id {
        Some(id) => format!("/v4/{id}{suffix}"),
        None => format!("/${{u#*/}}{suffix}"),
    };
    format!(
        "u=${{ECS_CONTAINER_METADATA_URI_V4#http://}}; hp=${{u%%/*}}; \
         (printf \"GET {path} HTTP/1.0\\r\\n\\r\\n\"; sleep 1) | nc -w 2 ${{hp%:*}} ${{hp#*:}} > {out}"
    )
}

#[test]
fn the_task_metadata_endpoint_answers_inside_a_task_and_only_for_it() {
    if !can_run("the_task_metadata_endpoint_answers_inside_a_task_and_only_for_it") {
        return;
    }
    let w = World::start();
    let script = format!(
        "{} && {} && {} && grep -q '200 OK' /tmp/c && grep -q '\"Name\":\"main\"' /tmp/c \
         && grep -q '\"LaunchType\":\"FARGATE\"' /tmp/t && grep -q '\"Family\":\"meta\"' /tmp/t \
         && grep -q '\"memory_stats\"' /tmp/s && test \"$AWS_EXECUTION_ENV\" = AWS_ECS_FARGATE && sleep 1000",
        metadata_get("", None, "/tmp/c"),
        metadata_get("/task", None, "/tmp/t"),
        metadata_get("/stats", None, "/tmp/s"),
    );
    w.register("meta", vec![w.container("main", &script)]);
    let a = w.run("meta", &[]);
    let t = w.wait_for(&a, "RUNNING", MINUTE);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(w.describe(&a)["lastStatus"], "RUNNING", "the checks passed and it sleeps: {t:#}");

    // Another task asking for A's metadata is refused.
    let a_id = task_id(&a);
    let a_id = a_id.as_str();
    let snoop =
        format!("{} ; grep -q '403 Forbidden' /tmp/x", metadata_get("/task", Some(&format!("{a_id}-main")), "/tmp/x"));
    w.register("snoop", vec![w.container("main", &snoop)]);
    let b = w.run("snoop", &[]);
    assert_eq!(w.exit_code(&b, "main"), 0, "the endpoint refused another task's metadata: {:#}", w.describe(&b));
}

/// A bridge with one address and no ports, made by the test as the
/// "public" host address Berth publishes task ports on; gone on drop.
struct HostAddress {
    name: String,
    addr: Ipv4Addr,
}

impl HostAddress {
    fn new() -> Self {
        let n = std::process::id() % 250 + 1;
        let (name, addr) =
            (format!("btpub{n}"), Ipv4Addr::new(10, 216, (std::process::id() / 250 % 250) as u8, n as u8));
        let ip = |args: &[&str]| std::process::Command::new("ip").args(args).status().unwrap().success();
        let _ = ip(&["link", "del", &name]);
        assert!(ip(&["link", "add", &name, "type", "bridge"]));
        let me = Self { name, addr };
        assert!(ip(&["addr", "add", &format!("{addr}/32"), "dev", &me.name]));
        assert!(ip(&["link", "set", &me.name, "up"]));
        me
    }
}

impl Drop for HostAddress {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["link", "del", &self.name]).status();
    }
}

#[test]
fn assign_public_ip_publishes_the_task_ports_on_the_operators_address() {
    if !can_run("assign_public_ip_publishes_the_task_ports_on_the_operators_address") {
        return;
    }
    let public = HostAddress::new();
    let addr = public.addr.to_string();
    let w = World::start_with(&["--public-address", &addr]);
    let mut web = w.container("web", &web("hello-public"));
    web["portMappings"] = json!([{"containerPort": 8080}]);
    w.register("public", vec![web]);
    let run = |enabled: bool| {
        let v = w.ecs(
            "RunTask",
            json!({"taskDefinition": "public", "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-default"], "assignPublicIp": if enabled { "ENABLED" } else { "DISABLED" }}}}),
        );
        v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
    };
    let a = run(true);
    let t = w.wait_for(&a, "RUNNING", MINUTE);
    assert_eq!(
        t["containers"][0]["networkBindings"],
        json!([{"bindIP": addr, "containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]),
        "{t:#}"
    );
    // The host reaches the task at the public address (a local address the
    // test made), not only at its private one.
    let got = http_get_ready(public.addr, 8080, "/");
    assert!(got.contains("hello-public"), "{got}");
    // A second task cannot publish the same port: it fails to start, saying why.
    let b = run(true);
    let t = w.wait_for(&b, "STOPPED", MINUTE);
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    assert!(t["stoppedReason"].as_str().unwrap().contains("port 8080/tcp on"), "{t:#}");
    // Without ENABLED nothing is published.
    let c = run(false);
    let t = w.wait_for(&c, "RUNNING", MINUTE);
    assert!(t["containers"][0].get("networkBindings").is_none_or(|b| b == &json!([])), "{t:#}");
    // Stopping the publisher frees the port for another task.
    w.ecs("StopTask", json!({"task": a}));
    w.wait_for(&a, "STOPPED", MINUTE);
    let d = run(true);
    w.wait_for(&d, "RUNNING", MINUTE);
    assert!(http_get_ready(public.addr, 8080, "/").contains("hello-public"));
}
