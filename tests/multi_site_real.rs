//! One identity across sites on real services: a central site (2 units) and two edges (1 unit
//! each) in three models of one simulated controller, every unit running Keystone under Apache,
//! one MariaDB database that every site uses; the edges take their keys (and the admin
//! and service users' passwords) from the centre over a cross-model relation: each site's nova
//! logs in as the one user `nova`. A token issued on any unit
//! validates on every unit of every site through rotations, a leader change at the centre and
//! an edge cut off for a while; the centre never rotates past the cut edge. The scenario is
//! juju-sim's `multi_site`, also run by `make demo DEMO_ARGS=--multi-site`. Needs root and
//! scripts/install-real-stack.

mod support;

use juju_sim_fixtures::multi_site::{self, Options, SITES};
use support::TempDir;

#[test]
fn a_token_from_any_site_validates_at_every_site_through_rotations_a_leader_change_and_a_cut() {
    let out = TempDir::new("multi-site");
    let charm = support::pack_charm(&out);
    let options = Options {
        database: format!("ks_sites_{}", std::process::id()),
        fresh: true,
    };
    let (controller, figures) =
        multi_site::run(&charm, &options, &mut std::io::stdout()).expect("the multi-site run");

    assert_eq!(figures.failed, 0, "{:#?}", figures.failures);
    // Five rounds, one token per unit each; every token so far checked on all four units.
    let units: usize = SITES.iter().map(|(_, n)| n).sum();
    assert_eq!(figures.issued, 5 * units);
    let checks: usize = (1..=5).map(|round| round * units * units).sum();
    assert_eq!(figures.cross_site + figures.same_site, checks);
    assert!(figures.cross_site > figures.same_site, "{figures:?}");
    // Rotation 1 (scheduled), 2 (while edge2 was cut: it had acknowledged the one before), and
    // the one that waited for edge2 until it was back.
    assert_eq!(figures.rotations, 3);
    assert!(
        figures
            .guard_message
            .starts_with("not rotating: site edge2.keystone has not acknowledged"),
        "{}",
        figures.guard_message
    );
    assert_eq!(
        figures.waiting_status,
        "active: Unit is ready (fernet rotation waiting for site edge2.keystone)"
    );
    for (site, unit, status) in &figures.statuses {
        let expected = match site.as_str() {
            "central" => "active: Unit is ready",
            _ => "active: Unit is ready (keys from central-keystone, generation 4)",
        };
        assert_eq!(status, expected, "{site} {unit}");
    }
    assert_eq!(figures.statuses.len(), units);
    // Each site's nova is the one service user "nova", with one password that every site's
    // Keystone accepts.
    assert_eq!(figures.consumers.len(), SITES.len());
    for (site, user, status) in &figures.consumers {
        assert_eq!((user.as_str(), *status), ("nova", 201), "{site}");
    }
    // Each site registered its own region in the one catalog; only the centre bootstrapped.
    for (site, _) in SITES {
        assert!(
            figures.regions.iter().any(|r| r == site),
            "{:?}",
            figures.regions
        );
    }
    for (site, _) in SITES {
        let model = controller.model(site).expect("the site");
        let ran = |command: &str| {
            model
                .logs()
                .iter()
                .filter(|l| {
                    l.message
                        .contains(&format!("running keystone-manage {command}"))
                })
                .count()
        };
        let expected = usize::from(site == "central");
        assert_eq!(ran("db_sync"), expected, "{site}");
        assert_eq!(ran("bootstrap"), expected, "{site}");
        support::secrets::assert_no_leaks(model);
    }
}
