//! Every HTTP client the control plane makes starts from [`client`]: it
//! follows no redirect, so a credential (a minted token, a client secret,
//! an agent's token) only ever goes to the URL the catalog or the command
//! line names, and a 3xx is an answer to report, never an instruction.

/// A client builder that follows no redirect.
pub fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
}
