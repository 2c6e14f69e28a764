//! A routed lab: client and server namespaces on two subnets, joined by a
//! third namespace that forwards between them (a router), so that a
//! middlebox can act on the path. Its nftables resets connections in an
//! endpoint's name (`reject with tcp reset`) or drops conntrack state; the
//! endpoints' own kernels never see the forged segments leave.
//!
//! Both IPv4 and IPv6 are routed (the IPv6 addresses without duplicate
//! address detection, usable at once).
//!
//! Torn down by a Drop guard and by the interruption handler of `cleanup`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Result;

use crate::netns::{
    add_namespaces, add_veth, address, delete_namespaces, lab_name, run, run_in, wait_until_up,
    IFACE,
};

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 78, 1, 1);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 78, 2, 2);
const ROUTER_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(10, 78, 1, 254);
const ROUTER_SERVER_SIDE: Ipv4Addr = Ipv4Addr::new(10, 78, 2, 254);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd78, 1, 0, 0, 0, 0, 0, 1);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd78, 2, 0, 0, 0, 0, 0, 2);
const ROUTER_CLIENT_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd78, 1, 0, 0, 0, 0, 0, 0xfe);
const ROUTER_SERVER_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd78, 2, 0, 0, 0, 0, 0, 0xfe);
/// The router's interfaces towards the client and towards the server.
pub const TO_CLIENT: &str = "toclient";
pub const TO_SERVER: &str = "toserver";

/// Three namespaces, client - router - server; deleted on drop.
pub struct RoutedLab {
    pub client: String,
    pub router: String,
    pub server: String,
}

impl RoutedLab {
    pub fn new() -> Result<RoutedLab> {
        let base = lab_name("r");
        // the guard first, as in [`crate::netns::Lab::new`]
        let lab = RoutedLab {
            client: format!("{base}-c"),
            router: format!("{base}-r"),
            server: format!("{base}-s"),
        };
        add_namespaces(&[&lab.client, &lab.router, &lab.server])?;
        for (ns, there) in [(&lab.client, TO_CLIENT), (&lab.server, TO_SERVER)] {
            add_veth(ns, there, &lab.router)?;
        }
        let (c, s) = (Some(ROUTER_CLIENT_SIDE), Some(ROUTER_SERVER_SIDE));
        let (c6, s6) = (Some(ROUTER_CLIENT_SIDE_V6), Some(ROUTER_SERVER_SIDE_V6));
        for (ns, iface, addr, gateway, addr6, gateway6) in [
            (&lab.client, IFACE, CLIENT, c, CLIENT_V6, c6),
            (&lab.server, IFACE, SERVER, s, SERVER_V6, s6),
            (
                &lab.router,
                TO_CLIENT,
                ROUTER_CLIENT_SIDE,
                None,
                ROUTER_CLIENT_SIDE_V6,
                None,
            ),
            (
                &lab.router,
                TO_SERVER,
                ROUTER_SERVER_SIDE,
                None,
                ROUTER_SERVER_SIDE_V6,
                None,
            ),
        ] {
            address(ns, iface, addr, addr6)?;
            if let (Some(gw), Some(gw6)) = (gateway, gateway6) {
                run(
                    "ip",
                    &["-n", ns, "route", "add", "default", "via", &gw.to_string()],
                )?;
                let gw6 = gw6.to_string();
                run(
                    "ip",
                    &["-n", ns, "-6", "route", "add", "default", "via", &gw6],
                )?;
            }
        }
        run_in(&lab.router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        run_in(
            &lab.router,
            &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
        )?;
        lab.wait_carrier()?;
        Ok(lab)
    }

    fn wait_carrier(&self) -> Result<()> {
        wait_until_up(&[
            (&self.client, IFACE),
            (&self.server, IFACE),
            (&self.router, TO_CLIENT),
            (&self.router, TO_SERVER),
        ])
    }

    /// Runs an nftables script in the router (`nft -f -` text as one argument).
    pub fn nft(&self, script: &str) -> Result<()> {
        run_in(&self.router, &["nft", script])
    }

    /// `sysctl -w KEY=VALUE` in the router.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        run_in(&self.router, &["sysctl", "-qw", &format!("{key}={value}")])
    }

    /// Client and server addresses, IPv4 or IPv6.
    pub fn addrs(ipv6: bool) -> (IpAddr, IpAddr) {
        if ipv6 {
            (CLIENT_V6.into(), SERVER_V6.into())
        } else {
            (CLIENT.into(), SERVER.into())
        }
    }
}

impl Drop for RoutedLab {
    fn drop(&mut self) {
        delete_namespaces(&[&self.client, &self.router, &self.server]);
    }
}
