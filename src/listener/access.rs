//! Who may associate: the called AE title must be ours (unless any is
//! taken), and the calling AE title and the peer's address may be limited
//! to lists. DICOM authenticates nobody, so these are filters against
//! mistakes and strays, not security; TLS with client certificates is.

use std::cell::RefCell;
use std::net::IpAddr;

use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};
use ipnet::IpNet;

/// The rules, from the command line.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    /// Take any called AE title, not only ours.
    pub any_called: bool,
    /// The calling AE titles allowed; empty: any.
    pub calling: Vec<String>,
    /// The networks peers may connect from; empty: any.
    pub from: Vec<IpNet>,
}

impl AccessRules {
    /// Whether a peer at `address` may associate.
    pub fn admits_address(&self, address: IpAddr) -> bool {
        // A dual-stack socket sees IPv4 peers as ::ffff:a.b.c.d.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.from.is_empty() || self.from.iter().any(|net| net.contains(&address))
    }
}

/// The access check of one association request: the rules, whether its
/// address passed, and the AE titles it named (for the log line, whatever
/// the verdict).
pub struct Gate<'a> {
    rules: &'a AccessRules,
    address_admitted: bool,
    titles: RefCell<Option<(String, String)>>,
}

impl<'a> Gate<'a> {
    pub fn new(rules: &'a AccessRules, address: IpAddr) -> Gate<'a> {
        Gate {
            rules,
            address_admitted: rules.admits_address(address),
            titles: RefCell::new(None),
        }
    }

    /// The calling and called AE titles of the request, once it was read.
    pub fn titles(&self) -> Option<(String, String)> {
        self.titles.borrow().clone()
    }
}

// By reference: the gate is asked after the negotiation for the titles.
impl AccessControl for &Gate<'_> {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        *self.titles.borrow_mut() = Some((calling_ae_title.into(), called_ae_title.into()));
        if !self.rules.any_called && called_ae_title != this_ae_title {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let calling = &self.rules.calling;
        if !calling.is_empty() && !calling.iter().any(|title| title == calling_ae_title) {
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        // PS3.8 has no reason for an address: "no reason given".
        if !self.address_admitted {
            return Err(AssociationRJServiceUserReason::NoReasonGiven);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(from: &[&str]) -> AccessRules {
        AccessRules {
            from: from.iter().map(|net| net.parse().unwrap()).collect(),
            ..AccessRules::default()
        }
    }

    #[test]
    fn addresses_are_matched_against_the_networks() {
        let lan = rules(&["10.1.0.0/16", "fd00::/8"]);
        assert!(lan.admits_address("10.1.2.3".parse().unwrap()));
        assert!(!lan.admits_address("10.2.0.1".parse().unwrap()));
        assert!(lan.admits_address("fd12::1".parse().unwrap()));
        assert!(!lan.admits_address("::1".parse().unwrap()));
        // An IPv4 peer on a dual-stack socket.
        assert!(lan.admits_address("::ffff:10.1.9.9".parse().unwrap()));
        assert!(rules(&[]).admits_address("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn each_rule_has_its_reason() {
        let rules = AccessRules {
            calling: vec!["MODALITY".into()],
            ..rules(&["127.0.0.0/8"])
        };
        let check = |address: &str, calling: &str, called: &str| {
            (&Gate::new(&rules, address.parse().unwrap())).check_access("US", calling, called, None)
        };
        assert_eq!(check("127.0.0.1", "MODALITY", "US"), Ok(()));
        assert_eq!(
            check("127.0.0.1", "MODALITY", "THEM"),
            Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
        );
        assert_eq!(
            check("127.0.0.1", "STRAY", "US"),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        );
        assert_eq!(
            check("192.0.2.1", "MODALITY", "US"),
            Err(AssociationRJServiceUserReason::NoReasonGiven)
        );
        let any = AccessRules {
            any_called: true,
            ..AccessRules::default()
        };
        let gate = Gate::new(&any, "192.0.2.1".parse().unwrap());
        assert_eq!((&gate).check_access("US", "X", "THEM", None), Ok(()));
        assert_eq!(gate.titles(), Some(("X".into(), "THEM".into())));
    }
}
