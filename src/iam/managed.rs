//! The AWS managed IAM policies the platform serves, read-only, at
//! `arn:aws:iam::aws:policy<path><name>`: for example
//! `arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy`
//! or `arn:aws:iam::aws:policy/AdministratorAccess`.
//!
//! Each entry carries what IAM's `GetPolicy` and `GetPolicyVersion` return
//! for the policy — name, path, policy id, description, default version,
//! creation and update times — and the default version's document. The
//! documents are AWS's default versions as published in the AWS Managed
//! Policy Reference (the `version` field says which version each one is),
//! reproduced statement for statement and action for action, in the
//! published order — `Sid`s, actions, resources and conditions alike —
//! including actions for services this platform does not implement (they
//! allow nothing here, as no request names them). Only the whitespace and
//! the order of the elements within a statement are this file's own.
//!
//! One policy is trimmed: `ReadOnlyAccess`, whose published document lists
//! read-only actions for every AWS service (thousands of them). Only the
//! actions of the services this platform serves are kept — `ecs`, `ecr`,
//! `elasticloadbalancing`, `logs`, `ssm`, `secretsmanager`, `kms`, `iam`,
//! `sts`, `ec2`, `autoscaling`, `application-autoscaling` and
//! `cloudwatch` — in their published statements (`ReadOnlyActionsGroup1`
//! and `ReadOnlyActionsGroup2`, each an `Allow` on `"*"`) and in their
//! published order; the statement for Amazon S3 Express One Zone sessions,
//! which names no served service, is left out. Every other document is
//! complete.

/// One AWS managed policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsManagedPolicy {
    pub name: &'static str,
    /// `/` or `/service-role/` (with both slashes), as IAM returns `Path`.
    pub path: &'static str,
    /// IAM's `PolicyId` for it (21 characters, starting with `ANPA`).
    pub policy_id: &'static str,
    pub description: &'static str,
    /// The default version's id, e.g. `v4`.
    pub version: &'static str,
    /// Creation and last update, ISO 8601 with `Z`, e.g.
    /// `2017-11-16T21:37:55Z`.
    pub created: &'static str,
    pub updated: &'static str,
    /// The default version's document, JSON text.
    pub document: &'static str,
}

/// What every AWS managed policy ARN starts with, before the path.
const ARN_PREFIX: &str = "arn:aws:iam::aws:policy";

impl AwsManagedPolicy {
    /// `arn:aws:iam::aws:policy<path><name>`.
    pub fn arn(&self) -> String {
        format!("{ARN_PREFIX}{}{}", self.path, self.name)
    }
}

/// Every AWS managed policy served, sorted by name.
pub const ALL: &[AwsManagedPolicy] = &[
    AwsManagedPolicy {
        name: "AdministratorAccess",
        path: "/",
        policy_id: "ANPAIWMBCKSKIEE64ZLYK",
        description: "Provides full access to AWS services and resources.",
        version: "v1",
        created: "2015-02-06T18:39:46Z",
        updated: "2015-02-06T18:39:46Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": "*",
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerRegistryFullAccess",
        path: "/",
        policy_id: "ANPAIESRL7KD7IIVF6V4W",
        description: "Provides administrative access to Amazon ECR resources",
        version: "v3",
        created: "2015-12-21T17:06:48Z",
        updated: "2020-12-05T00:04:19Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ecr:*",
        "cloudtrail:LookupEvents"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "iam:CreateServiceLinkedRole"
      ],
      "Resource": "*",
      "Condition": {
        "StringEquals": {
          "iam:AWSServiceName": [
            "replication.ecr.amazonaws.com"
          ]
        }
      }
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerRegistryPowerUser",
        path: "/",
        policy_id: "ANPAJDNE5PIHROIBGGDDW",
        description: "Provides full access to Amazon EC2 Container Registry repositories, but does not allow repository deletion or policy changes.",
        version: "v3",
        created: "2015-12-21T17:05:33Z",
        updated: "2019-12-10T20:48:08Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetRepositoryPolicy",
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:GetLifecyclePolicy",
        "ecr:GetLifecyclePolicyPreview",
        "ecr:ListTagsForResource",
        "ecr:DescribeImageScanFindings",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerRegistryReadOnly",
        path: "/",
        policy_id: "ANPAIFYZPA37OOHVIH7KQ",
        description: "Provides read-only access to Amazon EC2 Container Registry repositories.",
        version: "v3",
        created: "2015-12-21T17:04:15Z",
        updated: "2019-12-10T20:56:32Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetRepositoryPolicy",
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:GetLifecyclePolicy",
        "ecr:GetLifecyclePolicyPreview",
        "ecr:ListTagsForResource",
        "ecr:DescribeImageScanFindings"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerServiceAutoscaleRole",
        path: "/service-role/",
        policy_id: "ANPAIUAP3EGGGXXCPDQKK",
        description: "Policy to enable Task Autoscaling for Amazon EC2 Container Service",
        version: "v2",
        created: "2016-05-12T23:25:44Z",
        updated: "2018-02-05T19:15:15Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ecs:DescribeServices",
        "ecs:UpdateService"
      ],
      "Resource": [
        "*"
      ]
    },
    {
      "Effect": "Allow",
      "Action": [
        "cloudwatch:DescribeAlarms",
        "cloudwatch:PutMetricAlarm"
      ],
      "Resource": [
        "*"
      ]
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerServiceRole",
        path: "/service-role/",
        policy_id: "ANPAJO53W2XHNACG7V77Q",
        description: "Default policy for Amazon ECS service role.",
        version: "v2",
        created: "2015-04-09T16:14:19Z",
        updated: "2016-08-11T13:08:01Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:Describe*",
        "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:Describe*",
        "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
        "elasticloadbalancing:RegisterTargets"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerServiceforEC2Role",
        path: "/service-role/",
        policy_id: "ANPAJLYJCVHC7TQHCSQDS",
        description: "Default policy for the Amazon EC2 Role for Amazon EC2 Container Service.",
        version: "v10",
        created: "2015-03-19T18:45:18Z",
        updated: "2026-02-12T17:59:52Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ec2:DescribeTags",
        "ecs:CreateCluster",
        "ecs:DeregisterContainerInstance",
        "ecs:DiscoverPollEndpoint",
        "ecs:Poll",
        "ecs:RegisterContainerInstance",
        "ecs:StartTelemetrySession",
        "ecs:UpdateContainerInstancesState",
        "ecs:Submit*",
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": "ecs:TagResource",
      "Resource": "*",
      "Condition": {
        "StringEquals": {
          "ecs:CreateAction": [
            "CreateCluster",
            "RegisterContainerInstance"
          ]
        }
      }
    },
    {
      "Effect": "Allow",
      "Action": [
        "ecs:ListTagsForResource"
      ],
      "Resource": [
        "arn:aws:ecs:*:*:task/*/*",
        "arn:aws:ecs:*:*:container-instance/*/*"
      ]
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ReadOnlyAccess",
        path: "/",
        policy_id: "ANPAIGDT4SV4GSETWTBZK",
        description: "Provides read only access to Amazon EC2 via the AWS Management Console.",
        version: "v5",
        created: "2015-02-06T18:40:17Z",
        updated: "2026-02-12T18:03:17Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ec2:Describe*",
        "ec2:GetSecurityGroupsForVpc"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": "elasticloadbalancing:Describe*",
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "cloudwatch:ListMetrics",
        "cloudwatch:GetMetricStatistics",
        "cloudwatch:Describe*"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": "autoscaling:Describe*",
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonECSInfrastructureRolePolicyForVolumes",
        path: "/service-role/",
        policy_id: "ANPAZKAPJZG4JRAUMLGMS",
        description: "Provides access to other AWS service resources required to manage volumes associated with ECS workloads on your behalf.",
        version: "v5",
        created: "2024-01-10T22:56:41Z",
        updated: "2026-02-12T18:02:34Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "CreateEBSManagedVolume",
      "Effect": "Allow",
      "Action": "ec2:CreateVolume",
      "Resource": "arn:aws:ec2:*:*:volume/*",
      "Condition": {
        "ArnLike": {
          "aws:RequestTag/AmazonECSCreated": "arn:aws:ecs:*:*:task/*"
        },
        "StringEquals": {
          "aws:RequestTag/AmazonECSManaged": "true"
        }
      }
    },
    {
      "Sid": "CreateEBSManagedVolumeFromSnapshot",
      "Effect": "Allow",
      "Action": "ec2:CreateVolume",
      "Resource": "arn:aws:ec2:*:*:snapshot/*"
    },
    {
      "Sid": "TagOnCreateVolume",
      "Effect": "Allow",
      "Action": "ec2:CreateTags",
      "Resource": "arn:aws:ec2:*:*:volume/*",
      "Condition": {
        "ArnLike": {
          "aws:RequestTag/AmazonECSCreated": "arn:aws:ecs:*:*:task/*"
        },
        "StringEquals": {
          "ec2:CreateAction": "CreateVolume",
          "aws:RequestTag/AmazonECSManaged": "true"
        }
      }
    },
    {
      "Sid": "DescribeVolumesForLifecycle",
      "Effect": "Allow",
      "Action": [
        "ec2:DescribeVolumes",
        "ec2:DescribeAvailabilityZones"
      ],
      "Resource": "*"
    },
    {
      "Sid": "DescribeInstancesForAttachingVolume",
      "Effect": "Allow",
      "Action": [
        "ec2:DescribeInstances"
      ],
      "Resource": "*"
    },
    {
      "Sid": "ManageEBSVolumeLifecycle",
      "Effect": "Allow",
      "Action": [
        "ec2:AttachVolume",
        "ec2:DetachVolume"
      ],
      "Resource": "arn:aws:ec2:*:*:volume/*",
      "Condition": {
        "StringEquals": {
          "aws:ResourceTag/AmazonECSManaged": "true"
        }
      }
    },
    {
      "Sid": "ManageVolumeAttachmentsForEC2",
      "Effect": "Allow",
      "Action": [
        "ec2:AttachVolume",
        "ec2:DetachVolume"
      ],
      "Resource": "arn:aws:ec2:*:*:instance/*"
    },
    {
      "Sid": "DeleteEBSManagedVolume",
      "Effect": "Allow",
      "Action": "ec2:DeleteVolume",
      "Resource": "arn:aws:ec2:*:*:volume/*",
      "Condition": {
        "ArnLike": {
          "aws:ResourceTag/AmazonECSCreated": "arn:aws:ecs:*:*:task/*"
        },
        "StringEquals": {
          "aws:ResourceTag/AmazonECSManaged": "true"
        }
      }
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonECSTaskExecutionRolePolicy",
        path: "/service-role/",
        policy_id: "ANPAJG4T4G4PV56DE72PY",
        description: "Provides access to other AWS service resources that are required to run Amazon ECS tasks",
        version: "v1",
        created: "2017-11-16T18:48:22Z",
        updated: "2017-11-16T18:48:22Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonECS_FullAccess",
        path: "/",
        policy_id: "ANPAJ7S7AN6YQPTJC7IFS",
        description: "Provides administrative access to Amazon ECS resources and enables ECS features through access to other AWS service resources, including VPCs, Auto Scaling groups, and CloudFormation stacks.",
        version: "v21",
        created: "2017-11-07T21:36:54Z",
        updated: "2024-08-13T19:39:37Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ECSIntegrationsManagementPolicy",
      "Effect": "Allow",
      "Action": [
        "application-autoscaling:DeleteScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingActivities",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:RegisterScalableTarget",
        "appmesh:DescribeVirtualGateway",
        "appmesh:DescribeVirtualNode",
        "appmesh:ListMeshes",
        "appmesh:ListVirtualGateways",
        "appmesh:ListVirtualNodes",
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:CreateLaunchConfiguration",
        "autoscaling:DeleteAutoScalingGroup",
        "autoscaling:DeleteLaunchConfiguration",
        "autoscaling:Describe*",
        "autoscaling:UpdateAutoScalingGroup",
        "cloudformation:CreateStack",
        "cloudformation:DeleteStack",
        "cloudformation:DescribeStack*",
        "cloudformation:UpdateStack",
        "cloudwatch:DeleteAlarms",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricStatistics",
        "cloudwatch:PutMetricAlarm",
        "codedeploy:BatchGetApplicationRevisions",
        "codedeploy:BatchGetApplications",
        "codedeploy:BatchGetDeploymentGroups",
        "codedeploy:BatchGetDeployments",
        "codedeploy:ContinueDeployment",
        "codedeploy:CreateApplication",
        "codedeploy:CreateDeployment",
        "codedeploy:CreateDeploymentGroup",
        "codedeploy:GetApplication",
        "codedeploy:GetApplicationRevision",
        "codedeploy:GetDeployment",
        "codedeploy:GetDeploymentConfig",
        "codedeploy:GetDeploymentGroup",
        "codedeploy:GetDeploymentTarget",
        "codedeploy:ListApplicationRevisions",
        "codedeploy:ListApplications",
        "codedeploy:ListDeploymentConfigs",
        "codedeploy:ListDeploymentGroups",
        "codedeploy:ListDeployments",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:RegisterApplicationRevision",
        "codedeploy:StopDeployment",
        "ec2:AssociateRouteTable",
        "ec2:AttachInternetGateway",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:CancelSpotFleetRequests",
        "ec2:CreateInternetGateway",
        "ec2:CreateLaunchTemplate",
        "ec2:CreateRoute",
        "ec2:CreateRouteTable",
        "ec2:CreateSecurityGroup",
        "ec2:CreateSubnet",
        "ec2:CreateVpc",
        "ec2:DeleteLaunchTemplate",
        "ec2:DeleteSubnet",
        "ec2:DeleteVpc",
        "ec2:Describe*",
        "ec2:DetachInternetGateway",
        "ec2:DisassociateRouteTable",
        "ec2:ModifySubnetAttribute",
        "ec2:ModifyVpcAttribute",
        "ec2:RequestSpotFleet",
        "ec2:RunInstances",
        "ecs:*",
        "elasticfilesystem:DescribeAccessPoints",
        "elasticfilesystem:DescribeFileSystems",
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteRule",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetGroups",
        "events:DeleteRule",
        "events:DescribeRule",
        "events:ListRuleNamesByTarget",
        "events:ListTargetsByRule",
        "events:PutRule",
        "events:PutTargets",
        "events:RemoveTargets",
        "fsx:DescribeFileSystems",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfiles",
        "iam:ListRoles",
        "lambda:ListFunctions",
        "logs:CreateLogGroup",
        "logs:DescribeLogGroups",
        "logs:FilterLogEvents",
        "route53:CreateHostedZone",
        "route53:DeleteHostedZone",
        "route53:GetHealthCheck",
        "route53:GetHostedZone",
        "route53:ListHostedZonesByName",
        "servicediscovery:CreatePrivateDnsNamespace",
        "servicediscovery:CreateService",
        "servicediscovery:DeleteService",
        "servicediscovery:GetNamespace",
        "servicediscovery:GetOperation",
        "servicediscovery:GetService",
        "servicediscovery:ListNamespaces",
        "servicediscovery:ListServices",
        "servicediscovery:UpdateService",
        "sns:ListTopics"
      ],
      "Resource": [
        "*"
      ]
    },
    {
      "Sid": "SSMPolicy",
      "Effect": "Allow",
      "Action": [
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:GetParametersByPath"
      ],
      "Resource": "arn:aws:ssm:*:*:parameter/aws/service/ecs*"
    },
    {
      "Sid": "ManagedCloudformationResourcesCleanupPolicy",
      "Effect": "Allow",
      "Action": [
        "ec2:DeleteInternetGateway",
        "ec2:DeleteRoute",
        "ec2:DeleteRouteTable",
        "ec2:DeleteSecurityGroup"
      ],
      "Resource": [
        "*"
      ],
      "Condition": {
        "StringLike": {
          "ec2:ResourceTag/aws:cloudformation:stack-name": "EC2ContainerService-*"
        }
      }
    },
    {
      "Sid": "TasksPassRolePolicy",
      "Effect": "Allow",
      "Action": "iam:PassRole",
      "Resource": [
        "*"
      ],
      "Condition": {
        "StringLike": {
          "iam:PassedToService": "ecs-tasks.amazonaws.com"
        }
      }
    },
    {
      "Sid": "InfrastructurePassRolePolicy",
      "Effect": "Allow",
      "Action": "iam:PassRole",
      "Resource": [
        "arn:aws:iam::*:role/ecsInfrastructureRole"
      ],
      "Condition": {
        "StringEquals": {
          "iam:PassedToService": "ecs.amazonaws.com"
        }
      }
    },
    {
      "Sid": "InstancePassRolePolicy",
      "Effect": "Allow",
      "Action": "iam:PassRole",
      "Resource": [
        "arn:aws:iam::*:role/ecsInstanceRole*"
      ],
      "Condition": {
        "StringLike": {
          "iam:PassedToService": [
            "ec2.amazonaws.com",
            "ec2.amazonaws.com.cn"
          ]
        }
      }
    },
    {
      "Sid": "AutoScalingPassRolePolicy",
      "Effect": "Allow",
      "Action": "iam:PassRole",
      "Resource": [
        "arn:aws:iam::*:role/ecsAutoscaleRole*"
      ],
      "Condition": {
        "StringLike": {
          "iam:PassedToService": [
            "application-autoscaling.amazonaws.com",
            "application-autoscaling.amazonaws.com.cn"
          ]
        }
      }
    },
    {
      "Sid": "ServiceLinkedRoleCreationPolicy",
      "Effect": "Allow",
      "Action": "iam:CreateServiceLinkedRole",
      "Resource": "*",
      "Condition": {
        "StringLike": {
          "iam:AWSServiceName": [
            "ecs.amazonaws.com",
            "autoscaling.amazonaws.com",
            "ecs.application-autoscaling.amazonaws.com",
            "spot.amazonaws.com",
            "spotfleet.amazonaws.com"
          ]
        }
      }
    },
    {
      "Sid": "ELBTaggingPolicy",
      "Effect": "Allow",
      "Action": [
        "elasticloadbalancing:AddTags"
      ],
      "Resource": "*",
      "Condition": {
        "StringEquals": {
          "elasticloadbalancing:CreateAction": [
            "CreateTargetGroup",
            "CreateRule",
            "CreateListener",
            "CreateLoadBalancer"
          ]
        }
      }
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonSSMFullAccess",
        path: "/",
        policy_id: "ANPAJA7V6HI4ISQFMDYAG",
        description: "Provides full access to Amazon SSM.",
        version: "v4",
        created: "2015-05-29T17:39:47Z",
        updated: "2019-11-20T20:08:56Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "cloudwatch:PutMetricData",
        "ds:CreateComputer",
        "ds:DescribeDirectories",
        "ec2:DescribeInstanceStatus",
        "logs:*",
        "ssm:*",
        "ec2messages:*"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": "iam:CreateServiceLinkedRole",
      "Resource": "arn:aws:iam::*:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM*",
      "Condition": {
        "StringLike": {
          "iam:AWSServiceName": "ssm.amazonaws.com"
        }
      }
    },
    {
      "Effect": "Allow",
      "Action": [
        "iam:DeleteServiceLinkedRole",
        "iam:GetServiceLinkedRoleDeletionStatus"
      ],
      "Resource": "arn:aws:iam::*:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonSSMReadOnlyAccess",
        path: "/",
        policy_id: "ANPAJODSKQGGJTHRYZ5FC",
        description: "Provides read only access to Amazon SSM.",
        version: "v1",
        created: "2015-05-29T17:44:19Z",
        updated: "2015-05-29T17:44:19Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ssm:Describe*",
        "ssm:Get*",
        "ssm:List*"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "CloudWatchLogsFullAccess",
        path: "/",
        policy_id: "ANPAJ3ZGNWK2R5HW5BQFO",
        description: "Provides full access to CloudWatch Logs",
        version: "v8",
        created: "2015-02-06T18:40:02Z",
        updated: "2026-02-12T18:00:33Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "CloudWatchLogsFullAccess",
      "Effect": "Allow",
      "Action": [
        "logs:*",
        "cloudwatch:GenerateQuery",
        "cloudwatch:GenerateQueryResultsSummary",
        "observabilityadmin:GetS3TableIntegration",
        "observabilityadmin:ListS3TableIntegrations",
        "observabilityadmin:ListTelemetryPipelines"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "CloudWatchLogsReadOnlyAccess",
        path: "/",
        policy_id: "ANPAJ2YIYDYSNNEHK3VKW",
        description: "Provides read only access to CloudWatch Logs",
        version: "v12",
        created: "2015-02-06T18:40:03Z",
        updated: "2026-02-12T17:59:13Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "CloudWatchLogsReadOnlyAccess",
      "Effect": "Allow",
      "Action": [
        "logs:Describe*",
        "logs:Get*",
        "logs:List*",
        "logs:StartQuery",
        "logs:StopQuery",
        "logs:TestMetricFilter",
        "logs:FilterLogEvents",
        "logs:StartLiveTail",
        "logs:StopLiveTail",
        "cloudwatch:GenerateQuery",
        "cloudwatch:GenerateQueryResultsSummary",
        "observabilityadmin:ListS3TableIntegrations",
        "observabilityadmin:GetS3TableIntegration",
        "observabilityadmin:ListTelemetryPipelines"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "ElasticLoadBalancingFullAccess",
        path: "/",
        policy_id: "ANPAIDPMLA3IUIOQCISJ4",
        description: "Provides full access to Amazon ElasticLoadBalancing, and limited access to other services necessary to provide ElasticLoadBalancing features.",
        version: "v9",
        created: "2018-09-20T20:42:07Z",
        updated: "2026-02-23T18:57:07Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": "elasticloadbalancing:*",
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "ec2:DescribeAccountAttributes",
        "ec2:DescribeAddresses",
        "ec2:DescribeInternetGateways",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "ec2:DescribeVpcClassicLink",
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeClassicLinkInstances",
        "ec2:DescribeRouteTables",
        "ec2:DescribeCoipPools",
        "ec2:GetCoipPoolUsage",
        "ec2:GetSecurityGroupsForVpc",
        "ec2:DescribeVpcPeeringConnections",
        "ec2:DescribeAvailabilityZones",
        "cognito-idp:DescribeUserPoolClient"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": "iam:CreateServiceLinkedRole",
      "Resource": "*",
      "Condition": {
        "StringEquals": {
          "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"
        }
      }
    },
    {
      "Effect": "Allow",
      "Action": "arc-zonal-shift:*",
      "Resource": "arn:aws:elasticloadbalancing:*:*:loadbalancer/*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "arc-zonal-shift:ListManagedResources",
        "arc-zonal-shift:ListZonalShifts"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "ElasticLoadBalancingReadOnly",
        path: "/",
        policy_id: "ANPAJMO7B7SNFLQ6HH736",
        description: "Provides read only access to Amazon ElasticLoadBalancing and dependent services",
        version: "v3",
        created: "2018-09-20T20:17:09Z",
        updated: "2023-11-26T18:15:46Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Statement1",
      "Effect": "Allow",
      "Action": [
        "elasticloadbalancing:Describe*",
        "elasticloadbalancing:Get*"
      ],
      "Resource": "*"
    },
    {
      "Sid": "Statement2",
      "Effect": "Allow",
      "Action": [
        "ec2:DescribeInstances",
        "ec2:DescribeClassicLinkInstances",
        "ec2:DescribeSecurityGroups"
      ],
      "Resource": "*"
    },
    {
      "Sid": "Statement3",
      "Effect": "Allow",
      "Action": "arc-zonal-shift:GetManagedResource",
      "Resource": "arn:aws:elasticloadbalancing:*:*:loadbalancer/*"
    },
    {
      "Sid": "Statement4",
      "Effect": "Allow",
      "Action": [
        "arc-zonal-shift:ListManagedResources",
        "arc-zonal-shift:ListZonalShifts"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "IAMFullAccess",
        path: "/",
        policy_id: "ANPAI7XKCFMBPM3QQRRVQ",
        description: "Provides full access to IAM via the AWS Management Console.",
        version: "v2",
        created: "2015-02-06T18:40:38Z",
        updated: "2019-06-21T19:40:00Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "iam:*",
        "organizations:DescribeAccount",
        "organizations:DescribeOrganization",
        "organizations:DescribeOrganizationalUnit",
        "organizations:DescribePolicy",
        "organizations:ListChildren",
        "organizations:ListParents",
        "organizations:ListPoliciesForTarget",
        "organizations:ListRoots",
        "organizations:ListPolicies",
        "organizations:ListTargetsForPolicy"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "IAMReadOnlyAccess",
        path: "/",
        policy_id: "ANPAJKSO7NDY4T57MWDSQ",
        description: "Provides read only access to IAM via the AWS Management Console.",
        version: "v4",
        created: "2015-02-06T18:40:39Z",
        updated: "2018-01-25T19:11:27Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "iam:GenerateCredentialReport",
        "iam:GenerateServiceLastAccessedDetails",
        "iam:Get*",
        "iam:List*",
        "iam:SimulateCustomPolicy",
        "iam:SimulatePrincipalPolicy"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "PowerUserAccess",
        path: "/",
        policy_id: "ANPAJYRXTHIB4FOVS3ZXS",
        description: "Provides full access to AWS services and resources, but does not allow management of Users and groups.",
        version: "v12",
        created: "2015-02-06T18:39:47Z",
        updated: "2026-02-12T17:59:14Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "NotAction": [
        "iam:*",
        "organizations:*",
        "account:*"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "account:GetAccountInformation",
        "account:GetGovCloudAccountInformation",
        "account:GetPrimaryEmail",
        "account:ListRegions",
        "iam:CreateServiceLinkedRole",
        "iam:DeleteServiceLinkedRole",
        "iam:ListRoles",
        "organizations:DescribeEffectivePolicy",
        "organizations:DescribeOrganization"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "ReadOnlyAccess",
        path: "/",
        policy_id: "ANPAILL3HVNFSB6DCOWYQ",
        description: "Provides read-only access to AWS services and resources.",
        version: "v188",
        created: "2015-02-06T18:39:48Z",
        updated: "2026-07-21T18:42:30Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReadOnlyActionsGroup1",
      "Effect": "Allow",
      "Action": [
        "application-autoscaling:Describe*",
        "application-autoscaling:GetPredictiveScalingForecast",
        "application-autoscaling:ListTagsForResource",
        "autoscaling:Describe*",
        "autoscaling:GetPredictiveScalingForecast",
        "cloudwatch:Describe*",
        "cloudwatch:GenerateQuery",
        "cloudwatch:GenerateQueryResultsSummary",
        "cloudwatch:Get*",
        "cloudwatch:List*",
        "ec2:Describe*",
        "ec2:DescribeInstanceImageMetadata",
        "ec2:Get*",
        "ec2:ListImagesInRecycleBin",
        "ec2:ListSnapshotsInRecycleBin",
        "ec2:SearchLocalGatewayRoutes",
        "ec2:SearchTransitGatewayRoutes",
        "ecr:BatchCheck*",
        "ecr:BatchGet*",
        "ecr:Describe*",
        "ecr:Get*",
        "ecr:List*",
        "ecs:Describe*",
        "ecs:GetTaskProtection",
        "ecs:List*",
        "elasticloadbalancing:Describe*",
        "iam:Generate*",
        "iam:Get*",
        "iam:List*",
        "iam:Simulate*"
      ],
      "Resource": "*"
    },
    {
      "Sid": "ReadOnlyActionsGroup2",
      "Effect": "Allow",
      "Action": [
        "kms:Describe*",
        "kms:Get*",
        "kms:List*",
        "logs:Describe*",
        "logs:FilterLogEvents",
        "logs:Get*",
        "logs:ListAggregateLogGroupSummaries",
        "logs:ListAnomalies",
        "logs:ListEntitiesForLogGroup",
        "logs:ListIntegrations",
        "logs:ListLogAnomalyDetectors",
        "logs:ListLogDeliveries",
        "logs:ListLogGroupsForEntity",
        "logs:ListLogGroupsForQuery",
        "logs:ListScheduledQueries",
        "logs:ListSourcesForS3TableIntegration",
        "logs:ListTagsForResource",
        "logs:ListTagsLogGroup",
        "logs:StartLiveTail",
        "logs:StartQuery",
        "logs:StopLiveTail",
        "logs:StopQuery",
        "logs:TestMetricFilter",
        "secretsmanager:Describe*",
        "secretsmanager:GetResourcePolicy",
        "secretsmanager:List*",
        "ssm:Describe*",
        "ssm:Get*",
        "ssm:List*",
        "sts:GetAccessKeyInfo",
        "sts:GetCallerIdentity",
        "sts:GetSessionToken"
      ],
      "Resource": "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "SecretsManagerReadWrite",
        path: "/",
        policy_id: "ANPAI3VG7CI5BIQZQ6G2E",
        description: "Provides read/write access to AWS Secrets Manager via the AWS Management Console. Note: this exludes IAM actions, so combine with IAMFullAccess if rotation configuration is required.",
        version: "v5",
        created: "2018-04-04T18:05:29Z",
        updated: "2024-02-22T18:12:06Z",
        document: r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "BasePermissions",
      "Effect": "Allow",
      "Action": [
        "secretsmanager:*",
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:DescribeStackResource",
        "cloudformation:DescribeStacks",
        "cloudformation:ExecuteChangeSet",
        "docdb-elastic:GetCluster",
        "docdb-elastic:ListClusters",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "kms:DescribeKey",
        "kms:ListAliases",
        "kms:ListKeys",
        "lambda:ListFunctions",
        "rds:DescribeDBClusters",
        "rds:DescribeDBInstances",
        "redshift:DescribeClusters",
        "redshift-serverless:ListWorkgroups",
        "redshift-serverless:GetNamespace",
        "tag:GetResources"
      ],
      "Resource": "*"
    },
    {
      "Sid": "LambdaPermissions",
      "Effect": "Allow",
      "Action": [
        "lambda:AddPermission",
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:InvokeFunction",
        "lambda:UpdateFunctionConfiguration"
      ],
      "Resource": "arn:aws:lambda:*:*:function:SecretsManager*"
    },
    {
      "Sid": "SARPermissions",
      "Effect": "Allow",
      "Action": [
        "serverlessrepo:CreateCloudFormationChangeSet",
        "serverlessrepo:GetApplication"
      ],
      "Resource": "arn:aws:serverlessrepo:*:*:applications/SecretsManager*"
    },
    {
      "Sid": "S3Permissions",
      "Effect": "Allow",
      "Action": [
        "s3:GetObject"
      ],
      "Resource": [
        "arn:aws:s3:::awsserverlessrepo-changesets*",
        "arn:aws:s3:::secrets-manager-rotation-apps-*/*"
      ]
    }
  ]
}"#,
    },
];

/// The policy whose ARN is `arn`.
pub fn find(arn: &str) -> Option<&'static AwsManagedPolicy> {
    let rest = arn.strip_prefix(ARN_PREFIX)?;
    let (path, name) = rest.split_at(rest.rfind('/')? + 1);
    let found = ALL.binary_search_by(|p| p.name.cmp(name)).ok()?;
    let policy = &ALL[found];
    (policy.path == path).then_some(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::policy::{evaluate, Policies, PolicyDocument, PolicyKind, RequestContext};
    use serde_json::Value;

    /// The services whose actions `ReadOnlyAccess` keeps.
    const SERVED: &[&str] = &[
        "ecs",
        "ecr",
        "elasticloadbalancing",
        "logs",
        "ssm",
        "secretsmanager",
        "kms",
        "iam",
        "sts",
        "ec2",
        "autoscaling",
        "application-autoscaling",
        "cloudwatch",
    ];

    fn policy(name: &str) -> &'static AwsManagedPolicy {
        ALL.iter().find(|p| p.name == name).unwrap()
    }

    fn json(p: &AwsManagedPolicy) -> Value {
        serde_json::from_str(p.document)
            .unwrap_or_else(|e| panic!("{}: document is not JSON: {e}", p.name))
    }

    /// The strings of an element that is a string or a list of them.
    fn strings(v: &Value) -> Vec<&str> {
        match v {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().map(|i| i.as_str().unwrap()).collect(),
            other => panic!("not a string or a list of strings: {other}"),
        }
    }

    #[test]
    fn sorted_by_name_and_unique() {
        for pair in ALL.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} is not before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn documents_are_policy_json() {
        for p in ALL {
            let doc = json(p);
            assert_eq!(doc["Version"], "2012-10-17", "{}", p.name);
            let statements = doc["Statement"].as_array().unwrap();
            assert!(!statements.is_empty(), "{}", p.name);
        }
    }

    #[test]
    fn documents_parse_as_identity_policies() {
        for p in ALL {
            if let Err(e) = PolicyDocument::parse(p.document, PolicyKind::Identity) {
                panic!("{}: {e} ({:?})", p.name, e.reason());
            }
        }
    }

    #[test]
    fn metadata_is_well_formed() {
        let mut ids: Vec<&str> = ALL.iter().map(|p| p.policy_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len(), "policy ids are not unique");
        for p in ALL {
            assert_eq!(p.policy_id.len(), 21, "{}", p.name);
            assert!(p.policy_id.starts_with("ANPA"), "{}", p.name);
            assert!(
                p.policy_id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                "{}",
                p.name
            );
            assert!(p.path == "/" || p.path == "/service-role/", "{}", p.name);
            assert!(!p.description.is_empty(), "{}", p.name);
            let number = p.version.strip_prefix('v').unwrap();
            assert!(number.parse::<u32>().unwrap() >= 1, "{}", p.name);
            for date in [p.created, p.updated] {
                let b = date.as_bytes();
                assert_eq!(b.len(), 20, "{}: {date}", p.name);
                assert!(date.ends_with('Z') && b[10] == b'T', "{}: {date}", p.name);
            }
            assert!(p.created <= p.updated, "{}", p.name);
            if p.version == "v1" {
                assert_eq!(p.created, p.updated, "{}", p.name);
            }
        }
    }

    #[test]
    fn find_round_trips() {
        for p in ALL {
            let arn = p.arn();
            assert!(arn.starts_with("arn:aws:iam::aws:policy/"), "{arn}");
            assert_eq!(find(&arn), Some(p), "{arn}");
        }
        assert_eq!(
            find("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
                .map(|p| p.name),
            Some("AmazonECSTaskExecutionRolePolicy")
        );
        assert_eq!(
            find("arn:aws:iam::aws:policy/AdministratorAccess").map(|p| p.path),
            Some("/")
        );
    }

    #[test]
    fn find_refuses_other_arns() {
        for arn in [
            "",
            "AdministratorAccess",
            "arn:aws:iam::aws:policy",
            "arn:aws:iam::aws:policy/",
            "arn:aws:iam::aws:policyAdministratorAccess",
            "arn:aws:iam::aws:policy/administratoraccess",
            "arn:aws:iam::aws:policy/NoSuchPolicy",
            "arn:aws:iam::aws:policy/AmazonECSTaskExecutionRolePolicy",
            "arn:aws:iam::aws:policy/service-role/AdministratorAccess",
            "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
            "arn:aws:iam::123456789012:policy/AdministratorAccess",
            "arn:aws-cn:iam::aws:policy/AdministratorAccess",
            "arn:aws:iam::aws:policy/AdministratorAccess/",
        ] {
            assert_eq!(find(arn), None, "{arn}");
        }
    }

    #[test]
    fn task_execution_role_policy_is_exact() {
        let p = policy("AmazonECSTaskExecutionRolePolicy");
        assert_eq!(p.path, "/service-role/");
        assert_eq!(p.policy_id, "ANPAJG4T4G4PV56DE72PY");
        assert_eq!(p.version, "v1");
        let doc = json(p);
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        let s = &statements[0];
        assert_eq!(s["Effect"], "Allow");
        assert_eq!(s["Resource"], "*");
        assert!(s.get("Condition").is_none());
        assert_eq!(
            strings(&s["Action"]),
            [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ]
        );
    }

    #[test]
    fn read_only_access_keeps_only_served_services() {
        let doc = json(policy("ReadOnlyAccess"));
        let mut vendors = Vec::new();
        for s in doc["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow");
            assert_eq!(s["Resource"], "*");
            assert!(s.get("Condition").is_none());
            for action in strings(&s["Action"]) {
                let (vendor, _) = action.split_once(':').unwrap();
                assert!(SERVED.contains(&vendor), "{action}");
                if !vendors.contains(&vendor) {
                    vendors.push(vendor);
                }
            }
        }
        vendors.sort_unstable();
        let mut served = SERVED.to_vec();
        served.sort_unstable();
        assert_eq!(vendors, served);
    }

    fn allows(name: &str, action: &str, resource: &str) -> bool {
        let doc = PolicyDocument::parse(policy(name).document, PolicyKind::Identity).unwrap();
        let policies = Policies {
            identity: vec![&doc],
            ..Policies::default()
        };
        let ctx = RequestContext::new("arn:aws:iam::123456789012:user/alice", action, resource);
        evaluate(&policies, &ctx).is_allowed()
    }

    #[test]
    fn documents_grant_what_they_say() {
        let cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/default";
        let user = "arn:aws:iam::123456789012:user/bob";
        assert!(allows("AdministratorAccess", "iam:CreateUser", user));
        assert!(allows(
            "AmazonECSTaskExecutionRolePolicy",
            "ecr:GetAuthorizationToken",
            "*"
        ));
        assert!(!allows(
            "AmazonECSTaskExecutionRolePolicy",
            "ecs:RunTask",
            cluster
        ));
        assert!(allows("PowerUserAccess", "ecs:CreateCluster", cluster));
        assert!(allows("PowerUserAccess", "iam:ListRoles", "*"));
        assert!(!allows("PowerUserAccess", "iam:CreateUser", user));
        assert!(allows("ReadOnlyAccess", "ecs:DescribeClusters", cluster));
        assert!(allows("ReadOnlyAccess", "sts:GetCallerIdentity", "*"));
        assert!(!allows("ReadOnlyAccess", "ecs:DeleteCluster", cluster));
        assert!(allows("AmazonECS_FullAccess", "ecs:DeleteCluster", cluster));
        assert!(!allows(
            "AmazonEC2ContainerRegistryReadOnly",
            "ecr:PutImage",
            "*"
        ));
        assert!(allows(
            "AmazonEC2ContainerRegistryPowerUser",
            "ecr:PutImage",
            "*"
        ));
    }
}
