use super::*;

fn kind(s: &str) -> TargetErrorKind {
    Target::parse(s).unwrap_err().kind().clone()
}

#[test]
fn backups_are_marked_in_static_lists() {
    let t = Target::parse("127.0.0.1:80,127.0.0.1:81=2;backup").unwrap();
    let Target::Static(set) = &t else {
        panic!("{t:?}")
    };
    let eps: Vec<_> = set.iter().map(|e| (e.weight(), e.priority())).collect();
    assert_eq!(eps, [(1, 0), (2, 1)]);
    assert_eq!(t.to_string(), "static:127.0.0.1:80,127.0.0.1:81=2;backup");
    assert_eq!(Target::parse(&t.to_string()).unwrap(), t);
    assert_eq!(
        kind("127.0.0.1:80;standby"),
        TargetErrorKind::InvalidOption("standby".into())
    );
}

#[test]
fn labels_are_options_of_static_entries() {
    let t =
        Target::parse("127.0.0.1:80;role=primary, 127.0.0.1:81=2;backup;role=replica;zone=eu-1a")
            .unwrap();
    let Target::Static(set) = &t else {
        panic!("{t:?}")
    };
    let eps: Vec<_> = set.iter().collect();
    assert_eq!(eps[0].label("role"), Some("primary"));
    assert_eq!(eps[1].label("role"), Some("replica"));
    assert_eq!(eps[1].zone(), Some("eu-1a"));
    assert_eq!(eps[1].label("zone"), None, "a zone is not a label");
    assert_eq!((eps[1].weight(), eps[1].priority()), (2, 1));
    assert_eq!(Target::parse(&t.to_string()).unwrap(), t);
    for bad in ["role=", "=x", "role=a b", "role=a=b"] {
        assert_eq!(
            kind(&format!("127.0.0.1:80;{bad}")),
            TargetErrorKind::InvalidOption(bad.into()),
            "{bad}"
        );
    }
    assert_eq!(
        kind("127.0.0.1:80;role=a;role=b"),
        TargetErrorKind::InvalidOption("role=b".into()),
        "a label given twice"
    );
    let err = Target::parse("127.0.0.1:80;backup;role=").unwrap_err();
    assert!(err.to_string().contains("`;role=`"), "{err}");
    assert!(err.to_string().contains("at byte 20"), "{err}");
}

#[test]
fn every_form_parses() {
    let ep = |s: &str, w| Endpoint::new(s.parse().unwrap()).with_weight(w);
    assert_eq!(
        Target::parse("127.0.0.1:8080,127.0.0.1:8081=3").unwrap(),
        Target::Static(EndpointSet::new([
            ep("127.0.0.1:8080", 1),
            ep("127.0.0.1:8081", 3)
        ]))
    );
    assert_eq!(
        Target::parse("static:[::1]:80=0").unwrap(),
        Target::Static(EndpointSet::new([ep("[::1]:80", 0)]))
    );
    assert_eq!(
        Target::parse("127.0.0.1:80").unwrap(),
        Target::Static(EndpointSet::new([ep("127.0.0.1:80", 1)]))
    );
    let dns = |resolver: Option<&str>, host: &str, port| Target::Dns {
        resolver: resolver.map(|r| r.parse().unwrap()),
        host: host.into(),
        port,
        tags: Tags::default(),
    };
    assert_eq!(
        Target::parse("api.internal:443").unwrap(),
        dns(None, "api.internal", 443)
    );
    assert_eq!(
        Target::parse("dns:///api.internal:443").unwrap(),
        dns(None, "api.internal", 443)
    );
    assert_eq!(
        Target::parse("dns://127.0.0.1:5353/api.internal:80").unwrap(),
        dns(Some("127.0.0.1:5353"), "api.internal", 80)
    );
    assert_eq!(
        Target::parse("dns://10.0.0.2/api:80").unwrap(),
        dns(Some("10.0.0.2:53"), "api", 80)
    );
    assert_eq!(
        Target::parse("dns://[::1]:5353/[::1]:80").unwrap(),
        dns(Some("[::1]:5353"), "::1", 80)
    );
    assert_eq!(
        Target::parse("dns+srv:///_http._tcp.api.internal").unwrap(),
        Target::Srv {
            resolver: None,
            name: "_http._tcp.api.internal".into(),
            tags: Tags::default(),
        }
    );
    assert_eq!(
        Target::parse("dns+srv://[::1]/_grpc._tcp.x.y.").unwrap(),
        Target::Srv {
            resolver: Some("[::1]:53".parse().unwrap()),
            name: "_grpc._tcp.x.y.".into(),
            tags: Tags::default(),
        }
    );
}

#[test]
fn forgiving_where_the_meaning_is_clear() {
    assert_eq!(
        Target::parse("  127.0.0.1:80, 127.0.0.1:81 ").unwrap(),
        Target::parse("127.0.0.1:80,127.0.0.1:81").unwrap()
    );
    assert_eq!(
        Target::parse("DNS:///api.internal:80").unwrap(),
        Target::parse("dns:///api.internal:80").unwrap()
    );
    assert_eq!(
        Target::parse("[::ffff:10.0.0.1]:80,10.0.0.1:80").unwrap(),
        Target::parse("10.0.0.1:80").unwrap(),
        "an IPv4-mapped address is the IPv4 address"
    );
}

#[test]
fn display_round_trips() {
    for s in [
        "static:127.0.0.1:8080,127.0.0.1:8081=3",
        "dns:///api.internal:443",
        "dns://127.0.0.1:5353/api.internal:80",
        "dns://[::1]:53/[::1]:80",
        "dns+srv:///_http._tcp.api.internal",
        "dns+srv://127.0.0.1:5353/_http._tcp.api.internal",
        "static:127.0.0.1:80;zone=a;region=r;role=x",
        "dns:///api.eu.example:443;zone=eu-1a;region=eu;tier=gold",
        "dns+srv:///_http._tcp.api.internal;region=us",
        "first(dns:///api.eu.example:443;region=eu, dns:///api.us.example:443;region=us)",
        "first((static:127.0.0.1:80,127.0.0.1:81;backup), static:127.0.0.1:90)",
        "weighted(90=dns:///v1.internal:80, 10=static:127.0.0.1:80=3)",
    ] {
        let t = Target::parse(s).unwrap();
        assert_eq!(t.to_string(), s);
        assert_eq!(Target::parse(&t.to_string()).unwrap(), t);
    }
}

#[test]
fn every_mistake_has_a_typed_error_pointing_at_it() {
    assert_eq!(kind(""), TargetErrorKind::Empty);
    assert_eq!(kind("   "), TargetErrorKind::Empty);
    assert_eq!(
        kind("http://api:80"),
        TargetErrorKind::UnknownScheme("http".into())
    );
    assert_eq!(kind("dns://api.internal:80"), TargetErrorKind::MissingPath);
    assert_eq!(
        kind("dns:///api.internal"),
        TargetErrorKind::MissingPort("api.internal".into())
    );
    assert_eq!(
        kind("api.internal:http"),
        TargetErrorKind::InvalidPort("http".into())
    );
    assert_eq!(
        kind("api.internal:0"),
        TargetErrorKind::InvalidPort("0".into())
    );
    assert_eq!(
        kind("api.internal:70000"),
        TargetErrorKind::InvalidPort("70000".into())
    );
    assert_eq!(
        kind("dns:///bad host:80"),
        TargetErrorKind::InvalidHost("bad host".into())
    );
    assert_eq!(
        kind("dns:///-bad.x:80"),
        TargetErrorKind::InvalidHost("-bad.x".into())
    );
    assert_eq!(
        kind("dns://resolver.internal/api:80"),
        TargetErrorKind::InvalidResolver("resolver.internal".into())
    );
    assert_eq!(
        kind("dns+srv:///api.internal"),
        TargetErrorKind::InvalidSrvName("api.internal".into())
    );
    assert_eq!(
        kind("dns+srv:///_http._tcp.api:80"),
        TargetErrorKind::InvalidSrvName("_http._tcp.api:80".into())
    );
    assert_eq!(
        kind("127.0.0.1:80,api:80"),
        TargetErrorKind::InvalidAddress("api:80".into())
    );
    assert_eq!(
        kind("127.0.0.1:80=x"),
        TargetErrorKind::InvalidWeight("x".into())
    );
    assert_eq!(
        kind("127.0.0.1:80=-1"),
        TargetErrorKind::InvalidWeight("-1".into())
    );
    assert_eq!(
        kind("127.0.0.1:80,,127.0.0.1:81"),
        TargetErrorKind::EmptyEntry
    );
    assert!(matches!(kind("::1:80"), TargetErrorKind::InvalidHost(h) if h.contains("brackets")));

    let e = Target::parse("127.0.0.1:80,api:80").unwrap_err();
    assert_eq!(e.position(), 13);
    let e = Target::parse("dns:///api.internal:http").unwrap_err();
    assert_eq!(&e.input()[e.position()..], "http");
    let msg = e.to_string();
    assert!(
        msg.contains("`http` is not a port") && msg.contains("dns+srv:///"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn options_after_a_name_place_its_endpoints() {
    let t = Target::parse("api.eu.example:443;region=eu;zone=eu-1a").unwrap();
    let Target::Dns { host, tags, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!(host, "api.eu.example");
    assert_eq!(tags.zone.as_deref(), Some("eu-1a"));
    assert_eq!(tags.region.as_deref(), Some("eu"));
    // On an IP literal, the options place the one endpoint.
    let t = Target::parse("127.0.0.1:80;zone=a").unwrap();
    let Target::Static(set) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(set.iter().next().unwrap().zone(), Some("a"));
    assert_eq!(
        kind("dns:///api.internal:80;backup"),
        TargetErrorKind::InvalidOption("backup".into()),
        "`;backup` is for static entries"
    );
    assert_eq!(
        kind("dns:///api.internal:80;zone=a;zone=b"),
        TargetErrorKind::InvalidOption("zone=b".into())
    );
    let e = Target::parse("dns:///api.internal:80;zone=a;zone=b").unwrap_err();
    assert_eq!(&e.input()[e.position()..], "zone=b");
}

#[test]
fn composite_targets_parse_with_their_parts() {
    let t = Target::parse(
        "first(dns:///api.eu.example:443;region=eu, (127.0.0.1:80, 127.0.0.1:81), 127.0.0.1:90)",
    )
    .unwrap();
    let Target::First(parts) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(parts.len(), 3);
    assert!(matches!(&parts[1], Target::Static(s) if s.len() == 2));
    let t = Target::parse("WEIGHTED( 90 = dns:///a.internal:80 , 10=127.0.0.1:80=3 )").unwrap();
    let Target::Weighted(parts) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(parts.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [90, 10]);
    let Target::Static(set) = &parts[1].1 else {
        panic!("{t:?}")
    };
    assert_eq!(
        set.iter().next().unwrap().weight(),
        3,
        "the entry's own weight"
    );
}

#[test]
fn malformed_composite_targets_say_what_is_wrong() {
    assert_eq!(
        kind("frist(dns:///a.internal:80)"),
        TargetErrorKind::UnknownComposite("frist".into())
    );
    assert_eq!(kind("first()"), TargetErrorKind::EmptyComposite);
    assert_eq!(
        kind("first(dns:///a.internal:80"),
        TargetErrorKind::Unbalanced
    );
    assert_eq!(
        kind("first((127.0.0.1:80, dns:///a.internal:80)"),
        TargetErrorKind::Unbalanced
    );
    assert_eq!(
        kind("first(a.internal:80), b.internal:80)"),
        TargetErrorKind::Unbalanced
    );
    assert_eq!(
        kind("first(first(a.internal:80), b.internal:80)"),
        TargetErrorKind::NestedComposite
    );
    assert_eq!(
        kind("first(a.internal:80,, b.internal:80)"),
        TargetErrorKind::EmptyEntry
    );
    for bad in [
        "dns:///a.internal:80",
        "0=dns:///a.internal:80",
        "x=a.internal:80",
    ] {
        assert_eq!(
            kind(&format!("weighted({bad})")),
            TargetErrorKind::InvalidShare(bad.into()),
            "{bad}"
        );
    }
    // A part's own mistake, pointed at in the whole target.
    let e = Target::parse("first(dns:///a.internal:80, dns:///b.internal:http)").unwrap_err();
    assert_eq!(e.kind(), &TargetErrorKind::InvalidPort("http".into()));
    assert_eq!(&e.input()[e.position()..], "http)");
    let msg = e.to_string();
    assert!(!msg.contains('\n') && msg.contains("first(TARGET"), "{msg}");
}
