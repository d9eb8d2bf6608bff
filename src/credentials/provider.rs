//! The credential provider interface, and the simple providers.
//!
//! A provider turns a [`Grant`] (this agent, this server, this tool) into
//! what one server gets. Adding a provider (a cloud STS, a vault lease…) is
//! one more implementation of [`Provider`] and one more catalog variant.

use futures::future::BoxFuture;

use super::mint::{Grant, Minter};
use super::{Credential, CredentialError};

pub trait Provider: Send + Sync {
    /// The credential for one request of an agent. `minter` signs the
    /// control plane's own JWTs, for providers that build on them.
    fn issue<'a>(
        &'a self,
        minter: &'a Minter,
        grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>>;

    /// The credential for the control plane's own requests to the server
    /// (handshake, listings, its event stream), if it has one.
    fn for_connection(&self, minter: &Minter, server: &str) -> Option<Credential>;
}

/// The default: a JWT minted for each request.
pub struct Jwt;

impl Provider for Jwt {
    fn issue<'a>(
        &'a self,
        minter: &'a Minter,
        grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>> {
        let token = Credential::new(minter.mint(grant));
        Box::pin(std::future::ready(Ok(Some(token))))
    }

    /// A token whose subject is the control plane itself, for no tool.
    fn for_connection(&self, minter: &Minter, server: &str) -> Option<Credential> {
        let grant = Grant::for_control_plane(minter.issuer(), server);
        Some(Credential::new(minter.mint(&grant)))
    }
}

/// A fixed secret, for servers that cannot verify JWTs.
pub struct Static(pub Credential);

impl Provider for Static {
    fn issue<'a>(
        &'a self,
        _minter: &'a Minter,
        _grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>> {
        Box::pin(std::future::ready(Ok(Some(self.0.clone()))))
    }

    fn for_connection(&self, _minter: &Minter, _server: &str) -> Option<Credential> {
        Some(self.0.clone())
    }
}

/// Nothing at all.
pub struct Nothing;

impl Provider for Nothing {
    fn issue<'a>(
        &'a self,
        _minter: &'a Minter,
        _grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    fn for_connection(&self, _minter: &Minter, _server: &str) -> Option<Credential> {
        None
    }
}

/// A provider the server's credentials hold on to as well (the `aws-sts`
/// one, for its connection's asynchronous credentials).
impl<P: Provider> Provider for std::sync::Arc<P> {
    fn issue<'a>(
        &'a self,
        minter: &'a Minter,
        grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>> {
        (**self).issue(minter, grant)
    }

    fn for_connection(&self, minter: &Minter, server: &str) -> Option<Credential> {
        (**self).for_connection(minter, server)
    }
}
