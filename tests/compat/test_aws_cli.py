"""The issue's acceptance path, with the real aws CLI and only the two env vars."""
import json
import os
import stat

from conftest import SEED, Berth


def test_cli_clusters_and_task_definitions_end_to_end(berth, seed_file, tmp_path):
    # credentials and config are written on first start, private to the owner
    assert stat.S_IMODE(os.stat(berth.credentials_file).st_mode) == 0o600
    assert "endpoint_url = " + berth.endpoint in open(berth.config_file).read()

    _, out, _ = berth.aws("ecs", "create-cluster", "--cluster-name", "web")
    assert out["cluster"]["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/web"
    assert out["cluster"]["status"] == "ACTIVE"
    berth.aws("ecs", "create-cluster", "--cluster-name", "batch")
    _, out, _ = berth.aws("ecs", "list-clusters")
    assert sorted(out["clusterArns"]) == [
        "arn:aws:ecs:us-east-1:000000000000:cluster/batch",
        "arn:aws:ecs:us-east-1:000000000000:cluster/web",
    ]

    _, out, _ = berth.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + seed_file)
    td = out["taskDefinition"]
    assert td["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:000000000000:task-definition/api-service:1"
    assert td["revision"] == 1 and td["status"] == "ACTIVE"
    assert td["cpu"] == "512" and td["memory"] == "1024"
    assert td["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 8080
    berth.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + seed_file)

    _, out, _ = berth.aws("ecs", "describe-task-definition", "--task-definition", "api-service")
    assert out["taskDefinition"]["revision"] == 2
    assert out["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] == "/ecs/api-service"

    _, out, _ = berth.aws("ecs", "list-task-definitions", "--family-prefix", "api-service")
    assert [a.rsplit(":", 1)[1] for a in out["taskDefinitionArns"]] == ["1", "2"]

    _, out, _ = berth.aws("ecs", "deregister-task-definition", "--task-definition", "api-service:1")
    assert out["taskDefinition"]["status"] == "INACTIVE"
    _, out, _ = berth.aws("ecs", "list-task-definitions", "--family-prefix", "api-service")
    assert [a.rsplit(":", 1)[1] for a in out["taskDefinitionArns"]] == ["2"]
    _, out, _ = berth.aws("ecs", "list-task-definitions", "--status", "INACTIVE")
    assert [a.rsplit(":", 1)[1] for a in out["taskDefinitionArns"]] == ["1"]

    bad = dict(SEED, cpu="256", memory="4096")
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    rc, _, err = berth.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + str(p), check=False)
    assert rc != 0
    assert "ClientException" in err, err
    assert "512" in err and "2048" in err, "the message names the valid memory values: " + err


def test_state_survives_kill_9_and_restart(data_dir, seed_file):
    b = Berth(data_dir).start()
    try:
        b.aws("ecs", "create-cluster", "--cluster-name", "durable")
        b.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + seed_file)
        b.aws("ecs", "tag-resource", "--resource-arn", "arn:aws:ecs:us-east-1:000000000000:cluster/durable",
              "--tags", "key=team,value=core")
        creds_before = open(b.credentials_file).read()
        b.kill9()
        b = Berth(data_dir).start()
        assert open(b.credentials_file).read() == creds_before, "the root key is kept across restarts"
        _, out, _ = b.aws("ecs", "describe-clusters", "--clusters", "durable", "--include", "TAGS")
        assert out["clusters"][0]["status"] == "ACTIVE"
        assert out["clusters"][0]["tags"] == [{"key": "team", "value": "core"}]
        _, out, _ = b.aws("ecs", "describe-task-definition", "--task-definition", "api-service:1")
        assert out["taskDefinition"]["family"] == "api-service"
        _, out, _ = b.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + seed_file)
        assert out["taskDefinition"]["revision"] == 2, "revisions continue after a crash"
    finally:
        b.stop()


def test_second_up_on_same_data_dir_is_refused(berth):
    other = Berth(berth.data_dir)
    try:
        other.start()
        raise AssertionError("a second berth up on the same data dir must not start")
    except RuntimeError as e:
        assert "in use by another berth" in str(e), str(e)
    finally:
        other.stop()
    # the first one is unharmed
    rc, out, _ = berth.aws("ecs", "list-clusters")
    assert rc == 0


def test_sigterm_shuts_down_cleanly(data_dir):
    b = Berth(data_dir).start()
    assert b.terminate() == 0
    # and the data dir is free again
    b2 = Berth(data_dir).start()
    b2.stop()


def test_env_chooses_the_first_access_key(data_dir):
    b = Berth(data_dir, {"BERTH_ACCESS_KEY_ID": "AKIDBERTHTEST0001", "BERTH_SECRET_ACCESS_KEY": "s3cr3t-for-tests"}).start()
    try:
        assert b.credentials() == ("AKIDBERTHTEST0001", "s3cr3t-for-tests")
        rc, _, _ = b.aws("ecs", "list-clusters")
        assert rc == 0
    finally:
        b.stop()
