//! `rivulet stack`: the [`Spec`] as a compose file (version 3.8) for
//! `docker stack deploy -c - <job>`. Written as YAML whose scalars are
//! all JSON-quoted, so no value can be misread (`on`, `1e3`, `:`).

use super::spec::{Spec, HASH_LABEL, HEALTH_TIMING};
use serde_json::{json, Map, Value};

/// The compose file of `spec`, with a header saying how to deploy it.
pub fn render(spec: &Spec) -> String {
    let job = &spec.job;
    let token = spec.full(&spec.token_secret);
    let mut out = format!(
        "# The Rivulet job `{job}` as a Swarm stack. The cluster token must exist first:\n\
         #   head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' | docker secret create {token} -\n\
         # then: docker stack deploy -c THIS_FILE {job}\n"
    );
    for (name, _) in &spec.configs {
        out.push_str(&format!(
            "# and before it: rivulet stack -f MANIFEST --config {name} | docker config create {name} -\n"
        ));
    }
    out.push_str(&yaml(&compose(spec), 0));
    out
}

fn compose(spec: &Spec) -> Value {
    let net = &spec.network.0;
    let mut services = Map::new();
    for s in &spec.services {
        let mut deploy = json!({
            "replicas": 1,
            "endpoint_mode": "dnsrr",
            "restart_policy": {"condition": "on-failure", "delay": "2s"},
            "update_config": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback"},
            "labels": {HASH_LABEL: spec.hash(s)},
        });
        if !s.constraints.is_empty() {
            deploy["placement"] = json!({"constraints": s.constraints});
        }
        if let Some(m) = s.memory {
            deploy["resources"] = json!({"limits": {"memory": m.to_string()}});
        }
        let mut svc = json!({
            "image": s.image,
            "entrypoint": s.command.first().cloned().map(|e| vec![e]).unwrap_or_default(),
            "command": s.command.iter().skip(1).cloned().collect::<Vec<_>>(),
            "hostname": s.name,
            "networks": {net.as_str(): {"aliases": [s.name]}},
            "deploy": deploy,
        });
        if !s.env.is_empty() {
            svc["environment"] = json!(s.env);
        }
        if !s.volumes.is_empty() {
            svc["volumes"] = s.volumes.iter().map(|(v, t)| json!(format!("{v}:{t}"))).collect();
        }
        if !s.secrets.is_empty() {
            svc["secrets"] = s.secrets.iter().map(|r| json!({"source": r.name, "target": r.target})).collect();
        }
        if !s.configs.is_empty() {
            svc["configs"] = s.configs.iter().map(|(c, t)| json!({"source": c, "target": t})).collect();
        }
        if let Some(test) = &s.health {
            let t = HEALTH_TIMING;
            svc["healthcheck"] = json!({
                "test": test,
                "interval": format!("{}s", t.interval_s),
                "timeout": format!("{}s", t.timeout_s),
                "retries": t.retries,
                "start_period": format!("{}s", t.start_period_s),
            });
        }
        if let Some((published, target)) = s.publish {
            svc["ports"] = json!([{"published": published, "target": target, "protocol": "tcp", "mode": "host"}]);
        }
        services.insert(s.name.clone(), svc);
    }
    let mut networks = json!({net.as_str(): {"driver": "overlay", "attachable": false}});
    if spec.network.1 {
        networks[net.as_str()]["driver_opts"] = json!({"encrypted": ""});
    }
    let volumes: Map<String, Value> = spec
        .volumes
        .iter()
        .map(|(v, opts)| {
            let body = if opts.is_empty() { json!({}) } else { json!({"driver": "local", "driver_opts": opts}) };
            (v.clone(), body)
        })
        .collect();
    let mut secrets = Map::new();
    secrets.insert(spec.token_secret.clone(), json!({"external": true, "name": spec.full(&spec.token_secret)}));
    for (_, s) in &spec.external_secrets {
        secrets.insert(s.clone(), json!({"external": true, "name": s}));
    }
    let mut doc = json!({
        "version": "3.8",
        "services": services,
        "networks": networks,
        "volumes": volumes,
        "secrets": secrets,
    });
    if !spec.configs.is_empty() {
        // Created by name beforehand (see the header): a `file:` would tie
        // the stack to a path on the machine that deploys it.
        let external: Map<String, Value> =
            spec.configs.iter().map(|(n, _)| (n.clone(), json!({"external": true, "name": n}))).collect();
        doc["configs"] = Value::Object(external);
    }
    doc
}

/// `v` as block YAML at `indent` spaces.
fn yaml(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                let key = Value::String(k.clone()).to_string();
                match val {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n{}", yaml(val, indent + 2)));
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n{}", yaml(val, indent + 2)));
                    }
                    _ => out.push_str(&format!("{pad}{key}: {val}\n")),
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                match item {
                    Value::Object(inner) if !inner.is_empty() => {
                        let body = yaml(item, indent + 2);
                        out.push_str(&format!("{pad}- {}\n", body.trim_start().trim_end_matches('\n')));
                    }
                    _ => out.push_str(&format!("{pad}- {item}\n")),
                }
            }
        }
        scalar => out.push_str(&format!("{pad}{scalar}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_nests_maps_and_lists() {
        let v = json!({"a": {"b": [1, {"c": "x: y", "d": true}]}, "e": []});
        assert_eq!(yaml(&v, 0), "\"a\":\n  \"b\":\n    - 1\n    - \"c\": \"x: y\"\n      \"d\": true\n\"e\": []\n");
    }
}
