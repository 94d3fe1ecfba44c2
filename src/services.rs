//! Every service Berth serves, made once over the state they share (the
//! store, the bus, the settings) and registered once in the request
//! pipeline. Adding a service is its own folder and one line in
//! [`Services::registry`].
//!
//! Services reach one another only through what they are given here: ECS
//! asks Auto Scaling's groups through [`ScalingGroups`], the load balancer
//! finds instance targets through ECS's [`InstanceAddresses`], EC2 lists the
//! instances Auto Scaling launches through [`LaunchedInstances`], and
//! everyone tells the controllers of changes on the [`Bus`].
//!
//! [`ScalingGroups`]: crate::ecs::capacity_providers::ScalingGroups
//! [`LaunchedInstances`]: crate::ec2::instances::LaunchedInstances
//! [`InstanceAddresses`]: crate::elb::InstanceAddresses

use std::sync::Arc;

use crate::autoscaling::Autoscaling;
use crate::clock::Clock;
use crate::ec2::Ec2;
use crate::ecr::Ecr;
use crate::ecs::Ecs;
use crate::elb::Elb;
use crate::events::Bus;
use crate::iam::authority::{IamAuthorizer, IamIdentities};
use crate::iam::Iam;
use crate::kms::Kms;
use crate::logs::Logs;
use crate::secretsmanager::SecretsManager;
use crate::settings::Settings;
use crate::ssm::Ssm;
use crate::store::Store;
use crate::sts::Sts;
use crate::wire::authorize::Authorizer;
use crate::wire::identity::Identities;
use crate::wire::Registry;
use crate::{autoscaling, ec2, elb, platform, sts};

pub struct Services {
    pub store: Arc<Store>,
    pub bus: Arc<Bus>,
    pub settings: Arc<Settings>,
    pub ecs: Arc<Ecs>,
    pub logs: Arc<Logs>,
    pub ec2: Arc<Ec2>,
    pub autoscaling: Arc<Autoscaling>,
    pub elb: Arc<Elb>,
    pub ecr: Arc<Ecr>,
    pub kms: Arc<Kms>,
    pub ssm: Arc<Ssm>,
    pub secrets: Arc<SecretsManager>,
    pub iam: Arc<Iam>,
}

impl Services {
    /// Every service over `store`; the registry keeps its files in
    /// `registry/` beside the database.
    pub fn new(
        store: Arc<Store>,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Services> {
        let bus = Bus::new();
        let settings = Arc::new(settings);
        let ecs = Arc::new(Ecs::new(
            store.clone(),
            bus.clone(),
            settings.clone(),
            Arc::new(autoscaling::managed::Groups),
        ));
        let data_dir = store
            .path()
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf();
        let registry_dir = data_dir.join("registry");
        let master_key = settings
            .master_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("kms").join("master.key"));
        let kms = Arc::new(Kms::open(store.clone(), &master_key)?);
        let iam = Arc::new(Iam::new(store.clone(), kms.clone(), settings.roots.clone()));
        let ssm = Arc::new(Ssm {
            store: store.clone(),
            kms: kms.clone(),
        });
        let secrets = Arc::new(SecretsManager {
            store: store.clone(),
            kms: kms.clone(),
        });
        let ecr = Arc::new(Ecr::open(
            store.clone(),
            bus.clone(),
            &settings,
            &registry_dir,
            clock.clone(),
        )?);
        let logs = Arc::new(Logs::new(store.clone(), clock));
        let ec2 = Arc::new(Ec2 {
            store: store.clone(),
            bus: bus.clone(),
            launched: Arc::new(autoscaling::fleet::Launched),
        });
        let autoscaling = Arc::new(Autoscaling {
            store: store.clone(),
            bus: bus.clone(),
            settings: settings.clone(),
        });
        let elb = Arc::new(Elb {
            store: store.clone(),
            bus: bus.clone(),
            instances: Arc::new(crate::ecs::instances::LoadBalancerInstances),
        });
        Ok(Services {
            iam,
            kms,
            ssm,
            secrets,
            elb,
            ecr,
            store,
            bus,
            settings,
            ecs,
            logs,
            ec2,
            autoscaling,
        })
    }

    /// Who each access key is: the configured roots, IAM's users and
    /// STS's sessions.
    pub fn identities(&self) -> Arc<dyn Identities> {
        Arc::new(IamIdentities(self.iam.clone()))
    }

    /// What each caller may do: IAM's policies.
    pub fn authorizer(&self) -> Box<dyn Authorizer> {
        Box::new(IamAuthorizer(self.iam.clone()))
    }

    /// The registry of every service.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.add(self.ecs.clone().service())
            .add(self.logs.clone().service())
            .add(ec2::service(self.ec2.clone()))
            .add(autoscaling::service(self.autoscaling.clone()))
            .add(elb::service(self.elb.clone()))
            .add(self.ecr.clone().service())
            .add(self.kms.clone().service())
            .add(self.ssm.clone().service())
            .add(self.secrets.clone().service())
            .add(self.iam.clone().service())
            .add(sts::service(Arc::new(Sts {
                iam: self.iam.clone(),
            })))
            .add(platform::service(Arc::new(platform::Platform {
                ecs: self.ecs.clone(),
                logs: self.logs.clone(),
            })));
        r
    }
}
