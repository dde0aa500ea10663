//! Security groups made through EC2's API (the EC2 protocol, as the aws
//! CLI sends it) are the rules the firewall enforces, through the real
//! binary: ingress lets a client in and keeps another task out, egress
//! rules limit what a task may reach. Traffic goes only to addresses
//! inside the test Berth's own subnet. Needs root.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{World, can_run};

const MINUTE: Duration = Duration::from_secs(60);

/// The text of the first `<name>` element.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_owned())
}

impl World {
    fn ec2(&self, action: &str, params: &[(&str, &str)]) -> String {
        let mut all = vec![("Action", action), ("Version", "2016-11-15")];
        all.extend_from_slice(params);
        let (status, xml) = self.berth.query("ec2", &all).unwrap();
        assert_eq!(status, 200, "{action}: {xml}");
        xml
    }

    fn ec2_group(&self, name: &str) -> String {
        element(&self.ec2("CreateSecurityGroup", &[("GroupName", name), ("GroupDescription", name)]), "groupId").unwrap()
    }

    fn fetch_task(&self, family: &str, ip: &str, groups: &[&str]) -> i64 {
        let script = format!("(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 2 {ip} 8080 | grep -q hello-server");
        let c = json!({"name": "fetch", "image": self.registry.reference("busybox:latest"), "command": ["sh", "-c", script],
                       "stopTimeout": 1});
        self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": "256", "memory": "512", "containerDefinitions": [c]}),
        );
        let arn = self.run_in(family, groups);
        let deadline = Instant::now() + MINUTE;
        loop {
            let t = self.describe(&arn);
            if let Some(code) = t["containers"][0]["exitCode"].as_i64() {
                return code;
            }
            assert!(Instant::now() < deadline, "fetch did not exit: {t:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn run_in(&self, family: &str, groups: &[&str]) -> String {
        let awsvpc = json!({"subnets": ["subnet-default"], "securityGroups": groups});
        let v = self.ecs("RunTask", json!({"taskDefinition": family, "networkConfiguration": {"awsvpcConfiguration": awsvpc}}));
        assert_eq!(v["failures"], json!([]), "{v}");
        v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
    }
}

fn detail(task: &Value, name: &str) -> String {
    task["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .and_then(|d| d["value"].as_str())
        .unwrap()
        .to_owned()
}

#[test]
fn groups_made_through_ec2_are_what_the_firewall_enforces() {
    if !can_run("groups_made_through_ec2_are_what_the_firewall_enforces") {
        return;
    }
    let w = World::start();
    let client = w.ec2_group("client");
    let server = w.ec2_group("server");
    w.ec2(
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", &server),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "8080"),
            ("IpPermissions.1.ToPort", "8080"),
            ("IpPermissions.1.Groups.1.GroupId", &client),
        ],
    );
    let web = "mkdir -p /www && echo hello-server > /www/index.html && exec httpd -f -p 8080 -h /www";
    let c = json!({"name": "web", "image": w.registry.reference("busybox:latest"), "command": ["sh", "-c", web], "stopTimeout": 1});
    w.ecs(
        "RegisterTaskDefinition",
        json!({"family": "server", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "512", "containerDefinitions": [c]}),
    );
    let srv = w.run_in("server", &[&server]);
    let task = w.wait_for(&srv, "RUNNING", MINUTE);
    let ip = detail(&task, "privateIPv4Address");
    // The task's ENI, as EC2 shows it.
    let xml = w.ec2("DescribeNetworkInterfaces", &[("Filter.1.Name", "group-id"), ("Filter.1.Value.1", &server)]);
    assert_eq!(element(&xml, "privateIpAddress"), Some(ip.clone()), "{xml}");
    assert!(xml.contains("<status>in-use</status><subnetId>subnet-default</subnetId>"), "{xml}");

    // Ingress: a member of `client` gets through; a task in the default group does not.
    assert_eq!(w.fetch_task("allowed", &ip, &[&client]), 0, "client → server:8080 is allowed");
    assert_ne!(w.fetch_task("denied", &ip, &["sg-default"]), 0, "default group → server:8080 is denied");

    // Egress: without its default egress rule, `client` may send nothing,
    // though `server` would let it in.
    w.ec2(
        "RevokeSecurityGroupEgress",
        &[("GroupId", &client), ("IpPermissions.1.IpProtocol", "-1"), ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0")],
    );
    std::thread::sleep(Duration::from_secs(3)); // the agent re-renders the firewall every 2 s
    assert_ne!(w.fetch_task("no-egress", &ip, &[&client]), 0, "client without egress rules reaches nothing");
    // An egress rule to another port of `server` is not this one.
    let egress_to_server = |port: &'static str| {
        [
            ("GroupId", client.clone()),
            ("IpPermissions.1.IpProtocol", "tcp".to_owned()),
            ("IpPermissions.1.FromPort", port.to_owned()),
            ("IpPermissions.1.ToPort", port.to_owned()),
            ("IpPermissions.1.Groups.1.GroupId", server.clone()),
        ]
    };
    for (port, reaches) in [("9090", false), ("8080", true)] {
        let params = egress_to_server(port);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        w.ec2("AuthorizeSecurityGroupEgress", &params);
        std::thread::sleep(Duration::from_secs(3));
        let code = w.fetch_task(&format!("egress-{port}"), &ip, &[&client]);
        assert_eq!(code == 0, reaches, "with egress to server:{port}, client → server:8080 exits {code}");
    }

    // A group in use cannot be deleted.
    let (status, xml) = w.berth.query("ec2", &[("Action", "DeleteSecurityGroup"), ("GroupId", server.as_str())]).unwrap();
    assert_eq!((status, element(&xml, "Code").as_deref()), (400, Some("DependencyViolation")), "{xml}");
}
