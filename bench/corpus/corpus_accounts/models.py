from django.db import models


class Organization(models.Model):
    PLANS = [("free", "Free"), ("team", "Team"), ("enterprise", "Enterprise")]

    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    plan = models.CharField(max_length=20, choices=PLANS, db_default="free")

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    email = models.EmailField(unique=True, db_comment="Login e-mail, unique across the site")
    display_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)
    bio = models.TextField(null=True, blank=True)  # noqa: DJ001 - nullable: added online
    timezone = models.CharField(max_length=64, db_default="UTC")
    email_verified = models.BooleanField(default=False)
    team = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email"]
        verbose_name = "account"
        indexes = [
            models.Index(fields=["last_seen_at"], name="acct_last_seen_idx"),
            models.Index(fields=["created_at"], name="acct_created_idx"),
        ]

    def __str__(self) -> str:
        return self.email
